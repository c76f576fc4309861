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
 * - `llm_usage_task_totals`: one row per (task, requested model, user, provider, status), read by
 *   the task usage endpoint and the task metrics, so both stay exact after retention.
 *
 * All hold sums only (counts, tokens, integer nano-dollars, latency in whole microseconds), so
 * adding rows to them is exact and order-free. They are maintained in the usage sink's batch
 * transaction, from the rows that insert actually wrote (see `RollupDelta`), and rebuilt from the
 * raw rows by `npm run rollups:rebuild` and by the migration that created them.
 */
export const HOURLY_TABLE = 'llm_usage_hourly';
export const DAILY_MODEL_TABLE = 'llm_usage_daily_model';
export const DAILY_USER_TABLE = 'llm_usage_daily_user';
export const TASK_TOTALS_TABLE = 'llm_usage_task_totals';
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** Calls without a user are kept under '' in the summaries (a key column cannot be NULL in a unique index). */
export const NO_USER = '';

export type DbType = 'sqlite' | 'postgres';

export type KeyColumn = 'hour_ms' | 'day_ms' | 'task_id' | 'requested_model' | 'user_id' | 'provider' | 'status';

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
export const TASK_TOTALS: Summary = { table: TASK_TOTALS_TABLE, keys: ['task_id', 'requested_model', 'user_id', 'provider', 'status'], firstAt: true };
/** Every summary, in the order they are written. */
export const SUMMARIES: readonly Summary[] = [HOURLY, DAILY_MODEL, DAILY_USER, TASK_TOTALS];

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
 * summary from raw rows (the migration and the rebuild). Adds to existing rows on conflict, so it
 * can also fold raw rows into summaries that already hold other hours or tasks.
 */
export function summariseSql(db: DbType, s: Summary, where: string): string {
  const measures = rawMeasureExprs(db);
  const select = [...s.keys.map((k) => RAW_KEY_EXPRS[k]), ...MEASURES.map((m) => measures[m]), ...(s.firstAt ? ['MIN(u.created_at_ms)'] : [])];
  // The WHERE is not optional: SQLite needs one before ON CONFLICT in INSERT ... SELECT to parse the upsert.
  return (
    `INSERT INTO ${s.table} (${columnsOf(s).join(', ')}) SELECT ${select.join(', ')} FROM llm_usage u WHERE ${where} ` +
    `GROUP BY ${s.keys.map((k) => RAW_KEY_EXPRS[k]).join(', ')} ` +
    `ON CONFLICT (${s.keys.join(', ')}) DO UPDATE SET ${updates(db, s)}`
  );
}

/**
 * Builds a daily rollup from the hourly one instead of the raw rows (its keys are all hourly
 * dimensions, and sums of sums are the same sums): a fraction of the rows to read.
 */
export function summariseFromHourlySql(db: DbType, s: Summary, fromDayMs: number): string {
  const keyExpr = (k: KeyColumn) => (k === 'day_ms' ? `(h.hour_ms / ${DAY_MS}) * ${DAY_MS}` : `h.${k}`);
  const select = [...s.keys.map(keyExpr), ...MEASURES.map((m) => `SUM(h.${m})`)];
  return (
    `INSERT INTO ${s.table} (${columnsOf(s).join(', ')}) SELECT ${select.join(', ')} FROM ${HOURLY_TABLE} h WHERE h.hour_ms >= ${Math.trunc(fromDayMs)} ` +
    `GROUP BY ${s.keys.map(keyExpr).join(', ')} ` +
    `ON CONFLICT (${s.keys.join(', ')}) DO UPDATE SET ${updates(db, s)}`
  );
}

function updates(db: DbType, s: Summary): string {
  const sums = MEASURES.map((m) => `${m} = ${s.table}.${m} + excluded.${m}`);
  if (s.firstAt) sums.push(`${FIRST_AT} = ${db === 'postgres' ? 'LEAST' : 'MIN'}(${s.table}.${FIRST_AT}, excluded.${FIRST_AT})`);
  return sums.join(', ');
}

/** The fields of a raw row the summaries are made of (a `UsageRecord` as the sink stored it). */
export interface SummarisedRow {
  createdAtMs: number;
  taskId: string | null;
  userId: string | null;
  provider: string;
  requestedModel: string;
  status: string;
  inputTokens: number;
  cachedInputTokens: number;
  cacheWriteTokens: number;
  outputTokens: number;
  reasoningTokens: number;
  totalTokens: number;
  costNanos: number | null;
  unpriced: boolean;
  latencyMs: number;
  estimated: boolean;
}

interface Sums {
  keys: (string | number)[];
  /** The measures in MEASURES order except cost_nanos (see COUNTED). */
  counts: number[];
  cost: bigint;
  firstMs: number;
}

/**
 * What a batch of newly inserted rows adds to the summaries, computed in memory with the same
 * rules as the SQL above, then written as one multi-row upsert per table.
 */
export class RollupDelta {
  private readonly groups = SUMMARIES.map(() => new Map<string, Sums>());

  add(r: SummarisedRow): void {
    for (let i = 0; i < SUMMARIES.length; i++) {
      const s = SUMMARIES[i];
      if (s.keys.includes('task_id') && r.taskId === null) continue;
      this.fold(this.groups[i], s.keys.map((k) => keyValue(k, r)), r);
    }
  }

  /** Statements (SQL with placeholders, values) that add this delta to the summary tables. */
  statements(db: DbType): [sql: string, values: unknown[]][] {
    const out: [string, unknown[]][] = [];
    SUMMARIES.forEach((s, i) => {
      const list = [...this.groups[i].values()];
      // At most 18 values a row: 400 rows stay under SQLite's 32,766 and PostgreSQL's 65,535 bind parameters.
      for (let j = 0; j < list.length; j += 400) out.push(upsertStatement(db, s, list.slice(j, j + 400)));
    });
    return out;
  }

  private fold(map: Map<string, Sums>, keys: (string | number)[], r: SummarisedRow): void {
    const id = keys.join('\u0000');
    let s = map.get(id);
    if (!s) {
      s = { keys, counts: new Array<number>(MEASURES.length - 1).fill(0), cost: 0n, firstMs: r.createdAtMs };
      map.set(id, s);
    }
    const c = s.counts;
    if (r.createdAtMs < s.firstMs) s.firstMs = r.createdAtMs;
    c[0] += 1;
    c[1] += r.totalTokens;
    c[2] += r.inputTokens;
    c[3] += r.outputTokens;
    c[4] += r.cachedInputTokens;
    c[5] += r.cacheWriteTokens;
    c[6] += r.reasoningTokens;
    c[7] += r.unpriced ? 1 : 0;
    c[8] += r.estimated ? 1 : 0;
    if (r.costNanos !== null) s.cost += BigInt(r.costNanos);
    // A sum of latency_us passes 2^53 only after ~285 years of latency.
    c[9] += Math.trunc(r.latencyMs * 1000);
    c[10] += r.status === 'success' ? 0 : 1;
  }
}

function keyValue(k: KeyColumn, r: SummarisedRow): string | number {
  switch (k) {
    case 'hour_ms':
      return Math.floor(r.createdAtMs / HOUR_MS) * HOUR_MS;
    case 'day_ms':
      return Math.floor(r.createdAtMs / DAY_MS) * DAY_MS;
    case 'task_id':
      return r.taskId as string;
    case 'requested_model':
      return r.requestedModel;
    case 'user_id':
      return r.userId ?? NO_USER;
    case 'provider':
      return r.provider;
    case 'status':
      return r.status;
  }
}

function upsertStatement(db: DbType, s: Summary, groups: Sums[]): [string, unknown[]] {
  const cols = columnsOf(s);
  const values: unknown[] = [];
  const tuples: string[] = [];
  for (const g of groups) {
    const base = values.length;
    values.push(...g.keys, ...g.counts.slice(0, 9), bigintParam(g.cost), ...g.counts.slice(9));
    if (s.firstAt) values.push(g.firstMs);
    tuples.push(`(${cols.map((_, i) => placeholder(db, base + i + 1)).join(', ')})`);
  }
  const sql = `INSERT INTO ${s.table} (${cols.join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT (${s.keys.join(', ')}) DO UPDATE SET ${updates(db, s)}`;
  return [sql, values];
}

export const placeholder = (db: DbType, n: number) => (db === 'postgres' ? `$${n}` : '?');

/** A BigInt as the drivers take it: a number while exact, else its decimal text (both databases cast it to BIGINT). */
export const bigintParam = (v: bigint): number | string => (v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString());

export const floorHour = (ms: number) => Math.floor(ms / HOUR_MS) * HOUR_MS;
export const ceilHour = (ms: number) => Math.ceil(ms / HOUR_MS) * HOUR_MS;
export const floorDay = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS;
export const ceilDay = (ms: number) => Math.ceil(ms / DAY_MS) * DAY_MS;

/**
 * Start of the raw rows retention keeps at `nowMs`: rows of earlier hours may be deleted (whole
 * hours only, so an hour is either complete in `llm_usage` or answered from the rollup). Null
 * when raw rows are kept forever.
 */
export function rawHorizonMs(nowMs: number, rawDays: number | null): number | null {
  return rawDays === null ? null : floorHour(nowMs - rawDays * DAY_MS);
}
