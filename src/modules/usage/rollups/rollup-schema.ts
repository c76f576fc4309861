/**
 * Summary tables kept beside the raw `llm_usage` rows:
 *
 * - `llm_usage_hourly`: one row per (UTC hour, requested model, user, provider, status), every
 *   dimension the window queries group or filter by. Windows read it for whole hours, and for
 *   whole days when they are limited to one user.
 * - `llm_usage_daily_model` (UTC day, model, provider) and `llm_usage_daily_user` (UTC day, user):
 *   one dimension each, so a day holds at most a row per model or per user however
 *   many calls it had (a model x user table grows with the tasks, not with the calls). Unscoped
 *   windows read them for whole days.
 * - `llm_usage_weekly_user` (week, user): the same per-user sums a week at a time, for the whole
 *   weeks of an unscoped window, ranked by user (`by_user` of /usage/overall, the user list). A
 *   90-day window is then about 13 rows per user instead of 90, plus at most 6 days at each end
 *   from the daily rollup. Weeks are fixed 7-day epochs counted from the Unix epoch (they start
 *   on a Thursday, 00:00 UTC): integer division on both databases, no calendar functions, and
 *   never exposed (the API has no weekly buckets).
 * - `llm_usage_task_totals`: one row per (task, requested model, user, provider, status), read by
 *   the task usage endpoint, so it stays exact after retention.
 * - `llm_usage_task_summary`: one row per task, the same sums over all its models and statuses,
 *   read by the task metrics (joined with the window's tasks: a third of the rows of the totals).
 *
 * All hold sums only (counts, tokens, integer nano-dollars, latency in whole microseconds), so
 * adding rows to them is exact and order-free. They are maintained in the usage sink's batch
 * transaction with `summariseSql` over exactly the rows that batch's insert wrote, and rebuilt from
 * the raw rows with the same SQL by `npm run rollups:rebuild` and by the migration that created
 * them, so every path computes the same numbers.
 */
export const HOURLY_TABLE = 'llm_usage_hourly';
export const DAILY_MODEL_TABLE = 'llm_usage_daily_model';
export const DAILY_USER_TABLE = 'llm_usage_daily_user';
export const WEEKLY_USER_TABLE = 'llm_usage_weekly_user';
export const TASK_TOTALS_TABLE = 'llm_usage_task_totals';
export const TASK_SUMMARY_TABLE = 'llm_usage_task_summary';
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
export const WEEK_MS = 7 * DAY_MS;

/** Calls without a user are kept under '' in the summaries (a key column cannot be NULL in a unique index). */
export const NO_USER = '';

export type DbType = 'sqlite' | 'postgres';

export type KeyColumn = 'hour_ms' | 'day_ms' | 'week_ms' | 'task_id' | 'requested_model' | 'user_id' | 'provider' | 'status';

export interface Summary {
  table: string;
  /** Key columns, in primary-key order. */
  keys: readonly KeyColumn[];
  /** Also keeps MIN(created_at_ms) per group (the task totals, see FIRST_AT). */
  firstAt?: boolean;
}

export const HOURLY: Summary = { table: HOURLY_TABLE, keys: ['hour_ms', 'requested_model', 'user_id', 'provider', 'status'] };
// No status in the daily keys: failed_requests is a sum of its own, so a day has one row per model or user.
export const DAILY_MODEL: Summary = { table: DAILY_MODEL_TABLE, keys: ['day_ms', 'requested_model', 'provider'] };
export const DAILY_USER: Summary = { table: DAILY_USER_TABLE, keys: ['day_ms', 'user_id'] };
export const WEEKLY_USER: Summary = { table: WEEKLY_USER_TABLE, keys: ['week_ms', 'user_id'] };
export const TASK_TOTALS: Summary = { table: TASK_TOTALS_TABLE, keys: ['task_id', 'requested_model', 'user_id', 'provider', 'status'], firstAt: true };
export const TASK_SUMMARY: Summary = { table: TASK_SUMMARY_TABLE, keys: ['task_id'], firstAt: true };
/** Every summary, in the order they are written. */
export const SUMMARIES: readonly Summary[] = [HOURLY, DAILY_MODEL, DAILY_USER, WEEKLY_USER, TASK_TOTALS, TASK_SUMMARY];

/** Width in ms of a summary's time column (its first key), or null for the task totals. */
export function periodMs(s: Summary): number | null {
  const time = s.keys[0];
  return time === 'hour_ms' ? HOUR_MS : time === 'day_ms' ? DAY_MS : time === 'week_ms' ? WEEK_MS : null;
}

/** Summed columns, with the expression that computes each from raw rows aliased `u`. */
export const MEASURES = [
  'requests',
  'total_tokens',
  'input_tokens',
  'output_tokens',
  'cached_input_tokens',
  'cache_write_tokens',
  'reasoning_tokens',
  'unpriced_requests',
  'estimated_requests',
  'cost_nanos',
  'latency_us',
  'failed_requests',
] as const;
export type Measure = (typeof MEASURES)[number];

/**
 * Latency in whole microseconds, truncated: the same IEEE product and truncation in SQLite, in
 * PostgreSQL and in JavaScript (`Math.trunc(ms * 1000)`), so sums of it agree exactly on every path.
 */
export function latencyUsExpr(db: DbType, col = 'u.latency_ms'): string {
  return db === 'postgres' ? `CAST(TRUNC(${col} * 1000) AS BIGINT)` : `CAST(${col} * 1000 AS INTEGER)`;
}

/** SQL over raw rows `u` for each measure (COALESCE so an empty group sums to 0, never NULL). */
export function rawMeasureExprs(db: DbType): Record<Measure, string> {
  return {
    requests: 'COUNT(*)',
    total_tokens: 'COALESCE(SUM(u.total_tokens), 0)',
    input_tokens: 'COALESCE(SUM(u.input_tokens), 0)',
    output_tokens: 'COALESCE(SUM(u.output_tokens), 0)',
    cached_input_tokens: 'COALESCE(SUM(u.cached_input_tokens), 0)',
    cache_write_tokens: 'COALESCE(SUM(u.cache_write_tokens), 0)',
    reasoning_tokens: 'COALESCE(SUM(u.reasoning_tokens), 0)',
    unpriced_requests: 'COALESCE(SUM(CASE WHEN u.unpriced THEN 1 ELSE 0 END), 0)',
    estimated_requests: 'COALESCE(SUM(CASE WHEN u.estimated THEN 1 ELSE 0 END), 0)',
    cost_nanos: 'COALESCE(SUM(u.cost_nanos), 0)',
    latency_us: `COALESCE(SUM(${latencyUsExpr(db)}), 0)`,
    failed_requests: "COALESCE(SUM(CASE WHEN u.status = 'success' THEN 0 ELSE 1 END), 0)",
  };
}

/** Key expressions over raw rows `u` for each summary key column. */
export const RAW_KEY_EXPRS: Record<KeyColumn, string> = {
  hour_ms: `(u.created_at_ms / ${HOUR_MS}) * ${HOUR_MS}`,
  day_ms: `(u.created_at_ms / ${DAY_MS}) * ${DAY_MS}`,
  week_ms: `(u.created_at_ms / ${WEEK_MS}) * ${WEEK_MS}`,
  task_id: 'u.task_id',
  requested_model: 'u.requested_model',
  user_id: `COALESCE(u.user_id, '${NO_USER}')`,
  provider: 'u.provider',
  status: 'u.status',
};

/**
 * The task totals also keep the time of the task's first call in each group: a rebuild can then
 * tell a task whose oldest raw rows retention deleted (its totals are kept) from one it can rebuild.
 */
export const FIRST_AT = 'first_at_ms';

const columnsOf = (s: Summary) => [...s.keys, ...MEASURES, ...(s.firstAt ? [FIRST_AT] : [])];

/**
 * `INSERT INTO <table> (...) SELECT ... FROM llm_usage u WHERE <where> GROUP BY ...`: builds a
 * summary from raw rows (the migration, the rebuild and the usage sink). Adds to existing rows on
 * conflict, so it can also fold raw rows into summaries that already hold other hours or tasks.
 * `source` is what the raw rows are read from: the table, or (the sink on PostgreSQL) a CTE of
 * the rows an INSERT ... RETURNING just wrote.
 */
export function summariseSql(db: DbType, s: Summary, where: string, source = 'llm_usage'): string {
  const measures = rawMeasureExprs(db);
  const select = [...s.keys.map((k) => RAW_KEY_EXPRS[k]), ...MEASURES.map((m) => measures[m]), ...(s.firstAt ? ['MIN(u.created_at_ms)'] : [])];
  // A summary keyed by task holds only the calls made for a task.
  const rows = s.keys.includes('task_id') ? `(${where}) AND u.task_id IS NOT NULL` : where;
  // The WHERE is not optional: SQLite needs one before ON CONFLICT in INSERT ... SELECT to parse the upsert.
  return (
    `INSERT INTO ${s.table} (${columnsOf(s).join(', ')}) SELECT ${select.join(', ')} FROM ${source} u WHERE ${rows} ` +
    `GROUP BY ${s.keys.map((k) => RAW_KEY_EXPRS[k]).join(', ')} ` +
    `ON CONFLICT (${s.keys.join(', ')}) DO UPDATE SET ${updates(db, s)}`
  );
}

/**
 * Builds a coarser summary from a finer one instead of the raw rows (a day from its hours, a week
 * from its days, a task from its per-model totals: every key of the coarser one is a key of the
 * finer one, and sums of sums are the same sums): a fraction of the rows to read. A time rollup's
 * period is cut from the finer one's time column; `where` is over the finer rows `f` (for a time
 * rollup, it must start on a boundary of both periods).
 */
export function summariseFromFinerSql(db: DbType, s: Summary, finer: Summary, where: string): string {
  const width = periodMs(s);
  const finerTime = finer.keys[0];
  if (width !== null && periodMs(finer) === null) throw new Error(`summariseFromFinerSql: ${s.table} from ${finer.table}: not a time rollup`);
  if (s.firstAt && !finer.firstAt) throw new Error(`summariseFromFinerSql: ${finer.table} keeps no ${FIRST_AT} for ${s.table}`);
  const keyExpr = (k: KeyColumn) => (width !== null && k === s.keys[0] ? `(f.${finerTime} / ${width}) * ${width}` : `f.${k}`);
  const select = [...s.keys.map(keyExpr), ...MEASURES.map((m) => `SUM(f.${m})`), ...(s.firstAt ? [`MIN(f.${FIRST_AT})`] : [])];
  return (
    `INSERT INTO ${s.table} (${columnsOf(s).join(', ')}) SELECT ${select.join(', ')} FROM ${finer.table} f WHERE ${where} ` +
    `GROUP BY ${s.keys.map(keyExpr).join(', ')} ` +
    `ON CONFLICT (${s.keys.join(', ')}) DO UPDATE SET ${updates(db, s)}`
  );
}

/** A daily rollup from the hourly one (see summariseFromFinerSql). */
export function summariseFromHourlySql(db: DbType, s: Summary, fromDayMs: number): string {
  return summariseFromFinerSql(db, s, HOURLY, `f.hour_ms >= ${Math.trunc(fromDayMs)}`);
}

function updates(db: DbType, s: Summary): string {
  const sums = MEASURES.map((m) => `${m} = ${s.table}.${m} + excluded.${m}`);
  if (s.firstAt) sums.push(`${FIRST_AT} = ${db === 'postgres' ? 'LEAST' : 'MIN'}(${s.table}.${FIRST_AT}, excluded.${FIRST_AT})`);
  return sums.join(', ');
}

export const floorHour = (ms: number) => Math.floor(ms / HOUR_MS) * HOUR_MS;
export const ceilHour = (ms: number) => Math.ceil(ms / HOUR_MS) * HOUR_MS;
export const floorDay = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS;
export const ceilDay = (ms: number) => Math.ceil(ms / DAY_MS) * DAY_MS;
export const floorWeek = (ms: number) => Math.floor(ms / WEEK_MS) * WEEK_MS;
export const ceilWeek = (ms: number) => Math.ceil(ms / WEEK_MS) * WEEK_MS;

/**
 * Start of the raw rows retention keeps at `nowMs`: rows of earlier hours may be deleted (whole
 * hours only, so an hour is either complete in `llm_usage` or answered from the rollup). Null
 * when raw rows are kept forever.
 */
export function rawHorizonMs(nowMs: number, rawDays: number | null): number | null {
  return rawDays === null ? null : floorHour(nowMs - rawDays * DAY_MS);
}
