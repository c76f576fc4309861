import { MigrationInterface, QueryRunner, Table, TableIndex } from 'typeorm';

// Schema builder, not raw SQL, so one migration serves SQLite and PostgreSQL.
export class CreateTasks1764199000000 implements MigrationInterface {
  name = 'CreateTasks1764199000000';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: 'tasks',
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'status', type: 'varchar', length: '16' },
          { name: 'user_id', type: 'varchar', length: '128', isNullable: true },
          { name: 'repo_url', type: 'varchar', length: '2048' },
          { name: 'bug_description', type: 'text' },
          { name: 'test_command', type: 'text' },
          { name: 'model', type: 'varchar', length: '128' },
          { name: 'max_cost_nanos', type: 'bigint' },
          { name: 'max_attempts', type: 'integer' },
          { name: 'agent', type: 'varchar', length: '64' },
          { name: 'attempts', type: 'integer', default: 0 },
          { name: 'stage', type: 'varchar', length: '32', isNullable: true },
          { name: 'failure_reason', type: 'varchar', length: '64', isNullable: true },
          { name: 'failure_detail', type: 'varchar', length: '1000', isNullable: true },
          { name: 'patch', type: 'text', isNullable: true },
          { name: 'test_output_tail', type: 'text', isNullable: true },
          { name: 'cancel_requested', type: 'boolean', default: false },
          { name: 'worker_id', type: 'varchar', length: '128', isNullable: true },
          { name: 'heartbeat_at_ms', type: 'bigint', isNullable: true },
          { name: 'created_at_ms', type: 'bigint' },
          { name: 'started_at_ms', type: 'bigint', isNullable: true },
          { name: 'finished_at_ms', type: 'bigint', isNullable: true },
        ],
      }),
    );
    await q.createIndex('tasks', new TableIndex({ name: 'idx_tasks_status_created', columnNames: ['status', 'created_at_ms'] }));
    await q.createIndex('tasks', new TableIndex({ name: 'idx_tasks_created', columnNames: ['created_at_ms', 'id'] }));
    await q.createIndex('tasks', new TableIndex({ name: 'idx_tasks_user_created', columnNames: ['user_id', 'created_at_ms', 'id'] }));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('tasks');
  }
}
