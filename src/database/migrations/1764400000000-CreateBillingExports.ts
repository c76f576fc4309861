import { MigrationInterface, QueryRunner, Table, TableIndex } from 'typeorm';

// Schema builder, not raw SQL, so one migration serves SQLite and PostgreSQL.
export class CreateBillingExports1764400000000 implements MigrationInterface {
  name = 'CreateBillingExports1764400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: 'billing_exports',
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'series_key', type: 'varchar', length: '512' },
          { name: 'kind', type: 'varchar', length: '16' },
          { name: 'period_start_ms', type: 'bigint' },
          { name: 'period_end_ms', type: 'bigint' },
          { name: 'time_zone', type: 'varchar', length: '64' },
          { name: 'group_by', type: 'varchar', length: '64' },
          { name: 'user_id', type: 'varchar', length: '128', isNullable: true },
          { name: 'version', type: 'integer' },
          { name: 'status', type: 'varchar', length: '16' },
          { name: 'file_name', type: 'varchar', length: '255' },
          { name: 'sha256', type: 'varchar', length: '64' },
          { name: 'bytes', type: 'bigint' },
          { name: 'rows', type: 'integer' },
          { name: 'total_requests', type: 'bigint' },
          { name: 'total_cost_nanos', type: 'varchar', length: '40' },
          { name: 'totals', type: 'text' },
          { name: 'destinations', type: 'text', default: "'[]'" },
          { name: 'created_by', type: 'varchar', length: '128' },
          { name: 'created_at_ms', type: 'bigint' },
          { name: 'superseded_at_ms', type: 'bigint', isNullable: true },
          { name: 'superseded_by', type: 'varchar', length: '36', isNullable: true },
        ],
      }),
    );
    // One row per version of a series: two processes cannot both create the same version.
    await q.createIndex(
      'billing_exports',
      new TableIndex({ name: 'uq_billing_exports_series_version', columnNames: ['series_key', 'version'], isUnique: true }),
    );
    await q.createIndex('billing_exports', new TableIndex({ name: 'idx_billing_exports_created', columnNames: ['created_at_ms', 'id'] }));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('billing_exports');
  }
}
