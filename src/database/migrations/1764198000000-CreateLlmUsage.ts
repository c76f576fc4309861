import { MigrationInterface, QueryRunner, Table, TableIndex } from 'typeorm';

// Written with TypeORM's schema builder (not raw SQL) so one migration serves SQLite and PostgreSQL.
export class CreateLlmUsage1764198000000 implements MigrationInterface {
  name = 'CreateLlmUsage1764198000000';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: 'llm_usage',
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'created_at_ms', type: 'bigint' },
          { name: 'task_id', type: 'varchar', length: '64', isNullable: true },
          { name: 'user_id', type: 'varchar', length: '128', isNullable: true },
          { name: 'trace_id', type: 'varchar', length: '32', isNullable: true },
          { name: 'provider', type: 'varchar', length: '64' },
          { name: 'operation', type: 'varchar', length: '16' },
          { name: 'requested_model', type: 'varchar', length: '128' },
          { name: 'response_model', type: 'varchar', length: '128', isNullable: true },
          { name: 'input_tokens', type: 'integer', default: 0 },
          { name: 'cached_input_tokens', type: 'integer', default: 0 },
          { name: 'cache_write_tokens', type: 'integer', default: 0 },
          { name: 'output_tokens', type: 'integer', default: 0 },
          { name: 'reasoning_tokens', type: 'integer', default: 0 },
          { name: 'total_tokens', type: 'integer', default: 0 },
          { name: 'cost_nanos', type: 'bigint', isNullable: true },
          { name: 'unpriced', type: 'boolean', default: false },
          { name: 'price_source', type: 'varchar', length: '200', isNullable: true },
          { name: 'latency_ms', type: 'double precision' },
          { name: 'ttft_ms', type: 'double precision', isNullable: true },
          { name: 'streamed', type: 'boolean', default: false },
          { name: 'status', type: 'varchar', length: '16' },
          { name: 'error_type', type: 'varchar', length: '64', isNullable: true },
          { name: 'estimated', type: 'boolean', default: false },
        ],
      }),
    );
    await q.createIndex('llm_usage', new TableIndex({ name: 'idx_llm_usage_created', columnNames: ['created_at_ms'] }));
    await q.createIndex('llm_usage', new TableIndex({ name: 'idx_llm_usage_task', columnNames: ['task_id', 'created_at_ms'] }));
    await q.createIndex('llm_usage', new TableIndex({ name: 'idx_llm_usage_user', columnNames: ['user_id', 'created_at_ms'] }));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('llm_usage');
  }
}
