import { MigrationInterface, QueryRunner, Table, TableColumnOptions, TableIndex } from 'typeorm';
import {
  DbType,
  FIRST_AT,
  HOURLY_KEYS,
  HOURLY_TABLE,
  MEASURES,
  summariseSql,
  TASK_KEYS,
  TASK_TOTALS_TABLE,
} from '../../modules/usage/rollups/rollup-schema';

const KEY_COLUMNS: Record<string, TableColumnOptions> = {
  hour_ms: { name: 'hour_ms', type: 'bigint' },
  task_id: { name: 'task_id', type: 'varchar', length: '64' },
  requested_model: { name: 'requested_model', type: 'varchar', length: '128' },
  // '' for calls without a user: key columns of a unique index cannot be NULL.
  user_id: { name: 'user_id', type: 'varchar', length: '128' },
  provider: { name: 'provider', type: 'varchar', length: '64' },
  status: { name: 'status', type: 'varchar', length: '16' },
};

function summaryTable(name: string, keys: readonly string[], extra: TableColumnOptions[] = []): Table {
  return new Table({
    name,
    columns: [
      ...keys.map((k) => ({ ...KEY_COLUMNS[k], isPrimary: true })),
      ...MEASURES.map((m) => ({ name: m, type: 'bigint', default: 0 })),
      ...extra,
    ],
  });
}

/**
 * The hourly rollup and the per-task totals (see rollup-schema.ts), built from the rows already
 * in `llm_usage` in the same transaction, so the usage API reads the same numbers before and after.
 */
export class CreateUsageRollups1764500000000 implements MigrationInterface {
  name = 'CreateUsageRollups1764500000000';

  async up(q: QueryRunner): Promise<void> {
    const db = q.connection.options.type as DbType;
    await q.createTable(summaryTable(HOURLY_TABLE, HOURLY_KEYS));
    // Per-user windows (GET /usage/user/:id, user-scope keys) without scanning every user's hours.
    await q.createIndex(HOURLY_TABLE, new TableIndex({ name: 'idx_llm_usage_hourly_user', columnNames: ['user_id', 'hour_ms'] }));
    await q.createTable(summaryTable(TASK_TOTALS_TABLE, TASK_KEYS, [{ name: FIRST_AT, type: 'bigint' }]));
    await q.query(summariseSql(db, HOURLY_TABLE, '1 = 1'));
    await q.query(summariseSql(db, TASK_TOTALS_TABLE, 'u.task_id IS NOT NULL'));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable(TASK_TOTALS_TABLE);
    await q.dropTable(HOURLY_TABLE);
  }
}
