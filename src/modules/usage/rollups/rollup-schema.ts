/**
 * The two summary tables kept beside the raw `llm_usage` rows:
 *
 * - `llm_usage_hourly`: one row per (UTC hour, requested model, user, provider, status), which is
 *   every dimension the window queries group or filter by. Windows read it for whole hours.
 * - `llm_usage_task_totals`: one row per (task, requested model, user, provider, status), read by
 *   the task usage endpoint and the task metrics, so both stay exact after retention.
 *
 * Both hold sums only (counts, tokens, integer nano-dollars, latency in whole microseconds), so
 * adding rows to them is exact and order-free. They are maintained in the usage sink's batch
 * transaction, from the rows that insert actually wrote (see `RollupDelta`), and rebuilt from the
 * raw rows by `npm run rollups:rebuild` and by the migration that created them.
 */
export const HOURLY_TABLE = 'llm_usage_hourly';
export const TASK_TOTALS_TABLE = 'llm_usage_task_totals';
export const HOUR_MS = 3_600_000;

/** Calls without a user are kept under '' in the summaries (a key column cannot be NULL in a unique index). */
export const NO_USER = '';

export type DbType = 'sqlite' | 'postgres';

/** The dimensions shared by both tables, in key order. */
export const SHARED_KEYS = ['requested_model', 'user_id', 'provider', 'status'] as const;
export const HOURLY_KEYS = ['hour_ms', ...SHARED_KEYS] as const;
export const TASK_KEYS = ['task_id', ...SHARED_KEYS] as const;

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
  };
}

/** Key expressions over raw rows `u` for each summary key column. */
export const RAW_KEY_EXPRS: Record<(typeof HOURLY_KEYS)[number] | (typeof TASK_KEYS)[number], string> = {
  hour_ms: `(u.created_at_ms / ${HOUR_MS}) * ${HOUR_MS}`,
  task_id: 'u.task_id',
  requested_model: 'u.requested_model',
  user_id: `COALESCE(u.user_id, '${NO_USER}')`,
  provider: 'u.provider',
  status: 'u.status',
};

/**
 * `INSERT INTO <table> (...) SELECT ... FROM llm_usage u WHERE <where> GROUP BY ...`: builds a
 * summary from raw rows (the migration and the rebuild). Adds to existing rows on conflict, so it
 * can also fold raw rows into summaries that already hold other hours or tasks.
 */
export function summariseSql(db: DbType, table: string, where: string): string {
  const task = table === TASK_TOTALS_TABLE;
  const keys = task ? TASK_KEYS : HOURLY_KEYS;
  const measures = rawMeasureExprs(db);
  const cols = [...keys, ...MEASURES, ...(task ? [FIRST_AT] : [])];
  const select = [...keys.map((k) => RAW_KEY_EXPRS[k]), ...MEASURES.map((m) => measures[m]), ...(task ? ['MIN(u.created_at_ms)'] : [])];
  // The WHERE is not optional: SQLite needs one before ON CONFLICT in INSERT ... SELECT to parse the upsert.
  return (
    `INSERT INTO ${table} (${cols.join(', ')}) SELECT ${select.join(', ')} FROM llm_usage u WHERE ${where} ` +
    `GROUP BY ${keys.map((k) => RAW_KEY_EXPRS[k]).join(', ')} ` +
    `ON CONFLICT (${keys.join(', ')}) DO UPDATE SET ${updates(db, table)}`
  );
}

/**
 * The task totals also keep the time of the task's first call in each group: a rebuild can then
 * tell a task whose oldest raw rows retention deleted (its totals are kept) from one it can rebuild.
 */
export const FIRST_AT = 'first_at_ms';

function updates(db: DbType, table: string): string {
  const sums = MEASURES.map((m) => `${m} = ${table}.${m} + excluded.${m}`);
  if (table === TASK_TOTALS_TABLE) sums.push(`${FIRST_AT} = ${db === 'postgres' ? 'LEAST' : 'MIN'}(${table}.${FIRST_AT}, excluded.${FIRST_AT})`);
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
  /** The measures in MEASURES order except cost_nanos: nine counts, then latency_us. */
  counts: number[];
  cost: bigint;
  firstMs: number;
}

/**
 * What a batch of newly inserted rows adds to the summaries, computed in memory with the same
 * rules as the SQL above, then written as one multi-row upsert per table.
 */
export class RollupDelta {
  private readonly hourly = new Map<string, Sums>();
  private readonly tasks = new Map<string, Sums>();

  add(r: SummarisedRow): void {
    const shared = [r.requestedModel, r.userId ?? NO_USER, r.provider, r.status];
    this.fold(this.hourly, [Math.floor(r.createdAtMs / HOUR_MS) * HOUR_MS, ...shared], r);
    if (r.taskId !== null) this.fold(this.tasks, [r.taskId, ...shared], r);
  }

  get empty(): boolean {
    return this.hourly.size === 0;
  }

  /** Statements (SQL with `?` placeholders, values) that add this delta to the summary tables. */
  statements(db: DbType): [sql: string, values: unknown[]][] {
    const out: [string, unknown[]][] = [];
    for (const [table, keys, groups] of [
      [HOURLY_TABLE, HOURLY_KEYS, this.hourly],
      [TASK_TOTALS_TABLE, TASK_KEYS, this.tasks],
    ] as const) {
      const list = [...groups.values()];
      // At most 17 values a row: 400 rows stay under SQLite's 32,766 and PostgreSQL's 65,535 bind parameters.
      for (let i = 0; i < list.length; i += 400) out.push(upsertStatement(db, table, keys, list.slice(i, i + 400)));
    }
    return out;
  }

  private fold(map: Map<string, Sums>, keys: (string | number)[], r: SummarisedRow): void {
    const id = JSON.stringify(keys);
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
  }
}

function upsertStatement(db: DbType, table: string, keys: readonly string[], groups: Sums[]): [string, unknown[]] {
  const task = table === TASK_TOTALS_TABLE;
  const cols = [...keys, ...MEASURES, ...(task ? [FIRST_AT] : [])];
  const values: unknown[] = [];
  const tuples: string[] = [];
  for (const g of groups) {
    const base = values.length;
    values.push(...g.keys, ...g.counts.slice(0, 9), bigintParam(g.cost), g.counts[9]);
    if (task) values.push(g.firstMs);
    tuples.push(`(${cols.map((_, i) => placeholder(db, base + i + 1)).join(', ')})`);
  }
  const sql = `INSERT INTO ${table} (${cols.join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT (${keys.join(', ')}) DO UPDATE SET ${updates(db, table)}`;
  return [sql, values];
}

export const placeholder = (db: DbType, n: number) => (db === 'postgres' ? `$${n}` : '?');

/** A BigInt as the drivers take it: a number while exact, else its decimal text (both databases cast it to BIGINT). */
export const bigintParam = (v: bigint): number | string => (v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString());

export const floorHour = (ms: number) => Math.floor(ms / HOUR_MS) * HOUR_MS;
export const ceilHour = (ms: number) => Math.ceil(ms / HOUR_MS) * HOUR_MS;

/**
 * Start of the raw rows retention keeps at `nowMs`: rows of earlier hours may be deleted (whole
 * hours only, so an hour is either complete in `llm_usage` or answered from the rollup). Null
 * when raw rows are kept forever.
 */
export function rawHorizonMs(nowMs: number, rawDays: number | null): number | null {
  return rawDays === null ? null : floorHour(nowMs - rawDays * 86_400_000);
}
