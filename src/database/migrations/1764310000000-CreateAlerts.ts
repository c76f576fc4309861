import { MigrationInterface, QueryRunner, Table, TableIndex } from 'typeorm';

// Schema builder, not raw SQL, so one migration serves SQLite and PostgreSQL.
export class CreateAlerts1764310000000 implements MigrationInterface {
  name = 'CreateAlerts1764310000000';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: 'alerts',
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'dedup_key', type: 'varchar', length: '512', isUnique: true },
          { name: 'kind', type: 'varchar', length: '32' },
          { name: 'rule_id', type: 'varchar', length: '128' },
          { name: 'scope', type: 'varchar', length: '1024' },
          { name: 'threshold_percent', type: 'integer' },
          { name: 'window_start_ms', type: 'bigint' },
          { name: 'window_end_ms', type: 'bigint', isNullable: true },
          { name: 'payload', type: 'text' },
          { name: 'state', type: 'varchar', length: '16' },
          { name: 'notify', type: 'text' },
          { name: 'fired_at_ms', type: 'bigint' },
          { name: 'resolved_at_ms', type: 'bigint', isNullable: true },
          { name: 'dispatch_state', type: 'varchar', length: '16' },
          { name: 'dispatch_token', type: 'varchar', length: '36', isNullable: true },
          { name: 'dispatch_lease_until_ms', type: 'bigint', isNullable: true },
        ],
      }),
    );
    await q.createIndex('alerts', new TableIndex({ name: 'idx_alerts_fired', columnNames: ['fired_at_ms', 'id'] }));
    await q.createIndex('alerts', new TableIndex({ name: 'idx_alerts_dispatch', columnNames: ['dispatch_state', 'dispatch_lease_until_ms'] }));
    await q.createIndex('alerts', new TableIndex({ name: 'idx_alerts_state_window_end', columnNames: ['state', 'window_end_ms'] }));
    await q.createTable(
      new Table({
        name: 'alert_deliveries',
        columns: [
          { name: 'id', type: 'varchar', length: '36', isPrimary: true },
          { name: 'alert_id', type: 'varchar', length: '36' },
          { name: 'notifier', type: 'varchar', length: '64' },
          { name: 'state', type: 'varchar', length: '16' },
          { name: 'attempt', type: 'integer' },
          { name: 'result', type: 'varchar', length: '8' },
          { name: 'error', type: 'varchar', length: '1000', isNullable: true },
          { name: 'http_status', type: 'integer', isNullable: true },
          { name: 'started_at_ms', type: 'bigint' },
          { name: 'finished_at_ms', type: 'bigint' },
        ],
        foreignKeys: [{ columnNames: ['alert_id'], referencedTableName: 'alerts', referencedColumnNames: ['id'], onDelete: 'CASCADE' }],
      }),
    );
    await q.createIndex(
      'alert_deliveries',
      new TableIndex({ name: 'idx_alert_deliveries_alert', columnNames: ['alert_id', 'notifier', 'state'] }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('alert_deliveries');
    await q.dropTable('alerts');
  }
}
