import { MigrationInterface, QueryRunner, Table, TableColumnOptions, TableIndex } from 'typeorm';
import {
  DAILY_MODEL,
  DAILY_USER,
  DbType,
  FIRST_AT,
  HOURLY,
  HOURLY_TABLE,
  KeyColumn,
  MEASURES,
  summariseFromFinerSql,
  summariseFromHourlySql,
  summariseSql,
  Summary,
  TASK_TOTALS,
} from '../../modules/usage/rollups/rollup-schema';

export const KEY_COLUMNS: Record<KeyColumn, TableColumnOptions> = {
  hour_ms: { name: 'hour_ms', type: 'bigint' },
  day_ms: { name: 'day_ms', type: 'bigint' },
  week_ms: { name: 'week_ms', type: 'bigint' },
  task_id: { name: 'task_id', type: 'varchar', length: '64' },
  requested_model: { name: 'requested_model', type: 'varchar', length: '128' },
  // '' for calls without a user: key columns of a unique index cannot be NULL.
  user_id: { name: 'user_id', type: 'varchar', length: '128' },
  provider: { name: 'provider', type: 'varchar', length: '64' },
  status: { name: 'status', type: 'varchar', length: '16' },
};

export function summaryTable(s: Summary): Table {
  return new Table({
    name: s.table,
    columns: [
      ...s.keys.map((k) => ({ ...KEY_COLUMNS[k], isPrimary: true })),
      ...MEASURES.map((m) => ({ name: m, type: 'bigint', default: 0 })),
      ...(s.firstAt ? [{ name: FIRST_AT, type: 'bigint' }] : []),
    ],
  });
}

/**
 * Creates a summary added after this migration and fills it from a finer summary that already
 * holds every call (retention deletes raw rows, never summary rows), in the migration's
 * transaction; on PostgreSQL with the fill factor of the others (see RollupsFillfactor1764700000000:
 * the usage sink updates summary rows in place).
 */
export async function createSummaryFrom(q: QueryRunner, summary: Summary, finer: Summary): Promise<void> {
  const db = q.connection.options.type as DbType;
  await q.createTable(summaryTable(summary));
  if (db === 'postgres') await q.query(`ALTER TABLE ${summary.table} SET (fillfactor = 70)`);
  await q.query(summariseFromFinerSql(db, summary, finer, '1 = 1'));
}

/**
 * The usage rollups and the per-task totals (see rollup-schema.ts), built from the rows already in
 * `llm_usage` in the same transaction, so the usage API reads the same numbers before and after.
 */
export class CreateUsageRollups1764600000000 implements MigrationInterface {
  name = 'CreateUsageRollups1764600000000';

  // The summaries of this migration, named (not SUMMARIES, which later migrations add to).
  private readonly summaries = [HOURLY, DAILY_MODEL, DAILY_USER, TASK_TOTALS];

  async up(q: QueryRunner): Promise<void> {
    const db = q.connection.options.type as DbType;
    for (const s of this.summaries) await q.createTable(summaryTable(s));
    await q.query(summariseSql(db, HOURLY, '1 = 1'));
    for (const s of [DAILY_MODEL, DAILY_USER]) await q.query(summariseFromHourlySql(db, s, 0));
    await q.query(summariseSql(db, TASK_TOTALS, 'u.task_id IS NOT NULL'));
    // Per-user windows (GET /usage/user/:id, user-scope keys) without scanning every user's hours.
    await q.createIndex(HOURLY_TABLE, new TableIndex({ name: 'idx_llm_usage_hourly_user', columnNames: ['user_id', 'hour_ms'] }));
  }

  async down(q: QueryRunner): Promise<void> {
    for (const s of [...this.summaries].reverse()) await q.dropTable(s.table);
  }
}
