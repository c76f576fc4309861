import { DataSource } from 'typeorm';
import {
  ceilDay,
  DAILY_MODEL,
  DAILY_USER,
  DbType,
  FIRST_AT,
  floorDay,
  floorHour,
  floorWeek,
  HOURLY,
  HOURLY_TABLE,
  rawHorizonMs,
  summariseFromFinerSql,
  summariseFromHourlySql,
  summariseSql,
  TASK_TOTALS,
  TASK_SUMMARY,
  TASK_TOTALS_TABLE,
  WEEKLY_USER,
} from './rollup-schema';

export interface RebuildResult {
  /** First hour rebuilt from raw rows (earlier hours kept as they were); null when there are no raw rows. */
  fromHourMs: number | null;
  hourlyRows: number;
  taskRows: number;
}

/**
 * Rebuilds the rollups and the per-task totals from the raw rows, in one transaction (readers see
 * the old summaries or the new ones, never a mix). Only what the raw rows still fully cover is
 * rebuilt: hours from the oldest raw row's hour on (and not before the retention horizon, where a
 * deletion may be half done), days likewise (whole days only), and tasks whose every raw row is in
 * those hours. Weeks are rebuilt from the daily rollup, from the week holding the first rebuilt day:
 * the days before it were kept and those after rebuilt, so the daily rollup is whole for every
 * such week. Summaries of older hours, days, weeks and tasks, whose raw rows retention deleted,
 * are kept as they are.
 */
export async function rebuildRollups(ds: DataSource, rawRetentionDays: number | null, nowMs = Date.now()): Promise<RebuildResult> {
  const db: DbType = ds.options.type === 'postgres' ? 'postgres' : 'sqlite';
  return ds.transaction(async (m) => {
    const q = (sql: string) => m.query(sql);
    const [oldest] = await q('SELECT MIN(created_at_ms) AS min_ms FROM llm_usage');
    if (oldest?.min_ms === null || oldest?.min_ms === undefined) {
      return { fromHourMs: null, hourlyRows: await count(q, HOURLY_TABLE), taskRows: await count(q, TASK_TOTALS_TABLE) };
    }
    let from = floorHour(Number(oldest.min_ms));
    const horizon = rawHorizonMs(nowMs, rawRetentionDays);
    // Before the retention horizon an hour may be half deleted: start at it. Under retention, the
    // day of the oldest raw row may have lost its earlier hours: days start at the next whole one.
    if (horizon !== null && horizon > from) from = horizon;
    // Whole numbers only (inlined: the same text on both databases).
    const dayFrom = horizon !== null ? ceilDay(from) : floorDay(from);
    await q(`DELETE FROM ${HOURLY_TABLE} WHERE hour_ms >= ${from}`);
    await q(summariseSql(db, HOURLY, `u.created_at_ms >= ${from}`));
    // The days from the rebuilt hours (dayFrom >= from, or no raw row lies before from).
    for (const s of [DAILY_MODEL, DAILY_USER]) {
      await q(`DELETE FROM ${s.table} WHERE day_ms >= ${dayFrom}`);
      await q(summariseFromHourlySql(db, s, dayFrom));
    }
    const weekFrom = floorWeek(dayFrom);
    await q(`DELETE FROM ${WEEKLY_USER.table} WHERE week_ms >= ${weekFrom}`);
    await q(summariseFromFinerSql(db, WEEKLY_USER, DAILY_USER, `f.day_ms >= ${weekFrom}`));
    const f = String(from);
    // Tasks whose raw rows all lie in the rebuilt hours, and whose kept totals do not say they had older calls.
    const covered =
      `SELECT c.task_id FROM llm_usage c WHERE c.task_id IS NOT NULL GROUP BY c.task_id HAVING MIN(c.created_at_ms) >= ${f} ` +
      `EXCEPT SELECT k.task_id FROM ${TASK_TOTALS_TABLE} k WHERE k.${FIRST_AT} < ${f}`;
    // The per-task summary first: `covered` reads the task totals' first calls as they were kept.
    await q(`DELETE FROM ${TASK_SUMMARY.table} WHERE task_id IN (${covered})`);
    await q(summariseSql(db, TASK_SUMMARY, `u.task_id IN (${covered})`));
    await q(`DELETE FROM ${TASK_TOTALS_TABLE} WHERE task_id IN (${covered})`);
    await q(summariseSql(db, TASK_TOTALS, `u.task_id IN (${covered})`));
    return { fromHourMs: from, hourlyRows: await count(q, HOURLY_TABLE), taskRows: await count(q, TASK_TOTALS_TABLE) };
  });
}

async function count(query: (sql: string) => Promise<{ n: unknown }[]>, table: string): Promise<number> {
  const [r] = await query(`SELECT COUNT(*) AS n FROM ${table}`);
  return Number(r?.n ?? 0);
}
