import { Inject, Injectable } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { DataSource, SelectQueryBuilder } from 'typeorm';
import { usageConfig } from '../../config/usage.config';
import { InjectParallelReadDataSources, InjectReadDataSource } from '../../database/data-sources';
import { canAccessUser, Principal } from '../auth/principal';
import {
  OverallUsageDto,
  TaskUsageDto,
  TimeseriesBucketDto,
  TimeseriesDto,
  UsageBreakdownDto,
  UsageTotalsDto,
  UserListDto,
  UserUsageDto,
} from './dto/usage-response.dto';
import { UsageAccessDeniedException, UsageCursorInvalidException, UsageTaskNotFoundException } from './usage.exceptions';
import { nanosToUsd, nanosToUsdExact, parseNanos } from '../../common/money';
import {
  DAILY_MODEL,
  DAILY_USER,
  DAY_MS,
  DbType,
  floorHour,
  HOUR_MS,
  HOURLY,
  latencyUsExpr,
  NO_USER,
  rawHorizonMs,
  Summary,
  TASK_TOTALS_TABLE,
  WEEKLY_USER,
} from './rollups/rollup-schema';
import { PartSource, WindowPart, windowParts } from './window-parts';
import { decodeUserCursor, encodeUserCursor, UserCursor } from './user-cursor';
import { tagLikePattern, UsageTags } from '../../common/usage-tags';

/** Key of calls made without a user in `by_user` / user-grouped timeseries (not a valid user id, so no clash). */
export const NO_USER_KEY = '(none)';
/** Key of the users beyond `top_users` in `by_user` (not a valid user id either). */
export const OTHER_USERS_KEY = '(others)';

/**
 * The measures of one raw row (`u`) as a part of a window selects them: the same quantities the
 * summaries sum (see rollup-schema.ts), so raw rows and rollup rows can be summed together. Money
 * is integer nano-dollars and latency whole microseconds, so no float ever touches a sum. Same SQL
 * on SQLite and PostgreSQL.
 */
function rawPartMeasures(db: DbType): string {
  return [
    '1 AS requests',
    'u.total_tokens AS tokens',
    'u.input_tokens AS input_tokens',
    'u.output_tokens AS output_tokens',
    'u.cached_input_tokens AS cached_input_tokens',
    'u.cache_write_tokens AS cache_write_tokens',
    'u.reasoning_tokens AS reasoning_tokens',
    "CASE WHEN u.status = 'success' THEN 0 ELSE 1 END AS failed_requests",
    'CASE WHEN u.unpriced THEN 1 ELSE 0 END AS unpriced_requests',
    'CASE WHEN u.estimated THEN 1 ELSE 0 END AS estimated_requests',
    'u.cost_nanos AS cost_nanos',
    `${latencyUsExpr(db)} AS latency_us`,
  ].join(', ');
}

/** The same measures from a summary row (`r`), already sums. */
const SUMMARY_PART_MEASURES = [
  'r.requests AS requests',
  'r.total_tokens AS tokens',
  ...['input_tokens', 'output_tokens', 'cached_input_tokens', 'cache_write_tokens', 'reasoning_tokens', 'failed_requests', 'unpriced_requests', 'estimated_requests', 'cost_nanos', 'latency_us'].map(
    (m) => `r.${m} AS ${m}`,
  ),
].join(', ');

/** Sums of the parts' rows `p` (money and latency as text: exact beyond 2^53). A NULL cost (unpriced calls only) reads as 0. */
const OUTER_AGGREGATES = [
  ...['requests', 'tokens', 'input_tokens', 'output_tokens', 'cached_input_tokens', 'cache_write_tokens', 'reasoning_tokens', 'failed_requests', 'unpriced_requests', 'estimated_requests'].map(
    (m) => `SUM(p.${m}) AS ${m}`,
  ),
  'CAST(SUM(p.cost_nanos) AS TEXT) AS cost_nanos',
  'CAST(SUM(p.latency_us) AS TEXT) AS latency_us',
].join(', ');

/** The rollup a window part of `source` is read from, for a grouping (weeks: by user only, see windowGroups). */
function partSummary(source: Exclude<PartSource, 'raw'>, groupBy: GroupBy): Summary {
  if (source === 'hour') return HOURLY;
  if (source === 'day') return groupBy === 'model' ? DAILY_MODEL : DAILY_USER;
  if (groupBy === 'user') return WEEKLY_USER;
  throw new Error('no weekly rollup by model');
}

/** The rows of a rollup over a part `[fromMs, toMs)` (boundaries of its time column). */
function summaryPartSql(q: WindowQuery, summary: Summary, p: WindowPart): string {
  const time = `r.${summary.keys[0]}`;
  const key = q.groupBy === 'model' ? 'r.requested_model' : 'r.user_id';
  const bucket = q.bucketMs ? `, (${time} / ${q.bucketMs}) * ${q.bucketMs} AS bucket` : '';
  const where = [`${time} >= ${Math.trunc(p.fromMs)}`];
  // Open: the rollup's rows from the part's start on hold exactly the raw rows from there on.
  if (p.toMs !== null) where.push(`${time} < ${Math.trunc(p.toMs)}`);
  if (q.userId !== undefined) where.push('r.user_id = :userId');
  return `SELECT ${key} AS group_key${bucket}, ${SUMMARY_PART_MEASURES} FROM ${summary.table} r WHERE ${where.join(' AND ')}`;
}

const SUMMARY_AGGREGATES: [expr: string, alias: string][] = [
  ['SUM(r.requests)', 'requests'],
  ['SUM(r.total_tokens)', 'tokens'],
  ['SUM(r.input_tokens)', 'input_tokens'],
  ['SUM(r.output_tokens)', 'output_tokens'],
  ['SUM(r.cached_input_tokens)', 'cached_input_tokens'],
  ['SUM(r.cache_write_tokens)', 'cache_write_tokens'],
  ['SUM(r.reasoning_tokens)', 'reasoning_tokens'],
  ['SUM(r.failed_requests)', 'failed_requests'],
  ['SUM(r.unpriced_requests)', 'unpriced_requests'],
  ['SUM(r.estimated_requests)', 'estimated_requests'],
  ['CAST(SUM(r.cost_nanos) AS TEXT)', 'cost_nanos'],
  ['CAST(SUM(r.latency_us) AS TEXT)', 'latency_us'],
];

type RawRow = Record<string, string | number | null>;

/** One group, with the exact money kept as BigInt until the response is built. */
interface Group {
  key: string | null;
  bucket: number | null;
  counts: Omit<UsageBreakdownDto, 'cost_usd' | 'cost_usd_exact' | 'users'>;
  costNanos: bigint;
  latencyUs: bigint;
}

interface Window {
  days: number;
  /** Start of the window; on an hour boundary when its first hour is answered from the rollup only (raw rows gone). */
  sinceMs: number;
  nowMs: number;
  /** End (exclusive) of the rows counted, for a window pinned by a cursor; null: everything from sinceMs on. */
  untilMs: number | null;
}

type GroupBy = 'model' | 'user';

/** What a window query filters on and groups by. */
interface WindowQuery {
  w: Window;
  /** Only this user's calls (a user-scope key, or the user endpoint). */
  userId?: string;
  groupBy: GroupBy;
  /** Bucket width in ms for the timeseries (a multiple of an hour). */
  bucketMs?: number;
  /** Only calls carrying all these tags: answered from raw rows alone (the rollups keep no tags). */
  tags: UsageTags | null;
}

/** Default number of users named in `by_user` of /usage/overall. */
export const DEFAULT_TOP_USERS = 100;

/**
 * Read side of the usage API. Every method takes the caller's principal and applies the
 * user-scope rules here (not in the controller), so no path can forget them.
 *
 * Windows are answered from the weekly, daily and hourly rollups for their whole weeks, days and
 * hours and from raw rows only for partial hours (see windowParts); task usage from the per-task
 * totals. The summaries are kept in the transaction that writes the raw rows, so every answer is
 * exact to the nano-dollar.
 */
@Injectable()
export class UsageQueryService {
  private readonly db: DbType;

  // The read side: on SQLite its own connection, so a write waiting for a lock never holds up the usage API.
  constructor(
    @InjectReadDataSource() private readonly read: DataSource,
    @Inject(usageConfig.KEY) private readonly config: ConfigType<typeof usageConfig>,
    @InjectParallelReadDataSources() private readonly reads: DataSource[],
  ) {
    this.db = read.options.type === 'postgres' ? 'postgres' : 'sqlite';
  }

  /**
   * Usage of one task. The single place that decides whether a task exists and who owns it:
   * "has usage records" or "is a task of the task runner" (404 otherwise).
   */
  async taskUsage(taskId: string, principal: Principal): Promise<TaskUsageDto> {
    const owners = await this.taskOwners(taskId);
    if (owners === null) throw new UsageTaskNotFoundException(taskId);
    // Another user's task is "not found", as in the task API: a user key cannot tell it exists.
    if (!owners.every((owner) => canAccessUser(principal, owner))) throw new UsageTaskNotFoundException(taskId);
    const qb = this.summary(TASK_TOTALS_TABLE, 'r.requested_model').where('r.task_id = :taskId', { taskId });
    const groups = (await qb.getRawMany<RawRow>()).map((r) => toGroup(r, false));
    return { task_id: taskId, ...totals(groups), by_model: byKey(groups) };
  }

  /** Everything in the window; a user-scope key sees only its own user's calls. */
  async overallUsage(days: number, principal: Principal, topUsers = DEFAULT_TOP_USERS, tags: UsageTags | null = null): Promise<OverallUsageDto> {
    const w = this.window(days, Date.now(), tags);
    const userId = scopeUser(principal);
    // Independent statements, issued together: on PostgreSQL each on its own pooled connection; on
    // SQLite the user grouping (the largest) on the second read connection, the others on the first.
    const second = this.reads[1] ?? this.read;
    const [byModel, byUser, taskRate] = await Promise.all([
      this.windowGroups({ w, userId, groupBy: 'model', tags }),
      this.windowGroups({ w, userId, groupBy: 'user', tags }, second),
      this.taskSuccessRate(w, principal),
    ]);
    const t = totals(byModel);
    return {
      ...windowFields(w),
      ...t,
      success_rate_percent: taskRate ?? successRate(t),
      by_model: byKey(byModel),
      by_user: topWithOthers(byUser, topUsers),
    };
  }

  /** Every user of the window, most expensive first, a page at a time (the full list behind `by_user`). */
  async users(days: number, principal: Principal, limit: number, cursor?: string, tags: UsageTags | null = null): Promise<UserListDto> {
    let after: UserCursor | null = null;
    let w: Window;
    if (cursor !== undefined) {
      after = decodeUserCursor(cursor);
      if (after === null || after.days !== days) throw new UsageCursorInvalidException();
      w = this.window(days, after.nowMs, tags);
    } else {
      w = this.window(days, Date.now(), tags);
    }
    // Pinned to the first page's "now": later pages list the same set of calls.
    w.untilMs = w.nowMs;
    const groups = rankUsers(await this.windowGroups({ w, userId: scopeUser(principal), groupBy: 'user', tags }));
    let start = 0;
    if (after) {
      const c = after;
      start = groups.findIndex((g) => compareUsers(g, c.costNanos, c.key) > 0);
      if (start < 0) start = groups.length;
    }
    const page = groups.slice(start, start + limit);
    const last = page[page.length - 1];
    const more = start + limit < groups.length;
    return {
      ...windowFields(w),
      users: page.map((g) => ({ user_id: g.key ?? NO_USER_KEY, ...breakdown(g) })),
      total_users: groups.length,
      next_cursor: more && last ? encodeUserCursor({ days, nowMs: w.nowMs, costNanos: last.costNanos, key: userKey(last) }) : null,
    };
  }

  async userUsage(userId: string, days: number, principal: Principal, tags: UsageTags | null = null): Promise<UserUsageDto> {
    if (!canAccessUser(principal, userId)) throw new UsageAccessDeniedException(`user "${userId}"`);
    const w = this.window(days, Date.now(), tags);
    const byModel = await this.windowGroups({ w, userId, groupBy: 'model', tags });
    const t = totals(byModel);
    return { user_id: userId, ...windowFields(w), ...t, success_rate_percent: successRate(t), by_model: byKey(byModel) };
  }

  /** Buckets on UTC hour/day boundaries (whole hours, so rollup hours fall into exactly one bucket). */
  async timeseries(
    days: number,
    interval: 'hour' | 'day',
    groupBy: GroupBy,
    principal: Principal,
    tags: UsageTags | null = null,
  ): Promise<TimeseriesDto> {
    const w = this.window(days, Date.now(), tags);
    const width = interval === 'hour' ? HOUR_MS : DAY_MS;
    const groups = await this.windowGroups({ w, userId: scopeUser(principal), groupBy, bucketMs: width, tags });
    const buckets = new Map<number, Group[]>();
    for (const g of groups) {
      const list = buckets.get(g.bucket as number) ?? [];
      list.push(g);
      buckets.set(g.bucket as number, list);
    }
    const series: TimeseriesBucketDto[] = [...buckets.entries()]
      .sort(([a], [b]) => a - b)
      .map(([start, list]) => ({ start: new Date(start).toISOString(), ...breakdown(sum(list)), groups: byKey(list) }));
    return { ...windowFields(w), interval, group_by: groupBy, ...totals(groups), buckets: series };
  }

  /**
   * The window `[nowMs - days, nowMs)`, moved back to its hour's start when retention may have
   * deleted the raw rows of that first, partial hour: it is then answered whole from the rollup.
   * Not with a tags filter, which only raw rows can answer (it covers what retention kept).
   */
  private window(days: number, nowMs: number, tags: UsageTags | null): Window {
    let sinceMs = nowMs - days * DAY_MS;
    const horizon = rawHorizonMs(nowMs, this.config.retention.rawDays);
    if (tags === null && horizon !== null && floorHour(sinceMs) < horizon) sinceMs = floorHour(sinceMs);
    return { days, nowMs, sinceMs, untilMs: null };
  }

  /**
   * Groups of a window, in one statement: the parts of `windowParts` (raw rows for partial hours,
   * the hourly, daily and weekly rollups for whole hours, days and weeks, as coarse as the query
   * allows, and for a window ending now the coarsest from its first whole period on) as one
   * UNION ALL of their rows, summed by (key, bucket) in the database. One statement reads one
   * snapshot, so the parts agree with each other; they never overlap: each is split from the next
   * on the same boundary.
   * Whole days need an unscoped query bucketed by day or not at all (the daily rollups have one
   * dimension each and no per-user index); whole weeks need the user grouping without buckets.
   */
  private async windowGroups(q: WindowQuery, ds: DataSource = this.read): Promise<Group[]> {
    const { w } = q;
    let coarsest: 'hour' | 'day' | 'week' = 'hour';
    if (q.userId === undefined && (q.bucketMs === undefined || q.bucketMs === DAY_MS)) coarsest = q.groupBy === 'user' && q.bucketMs === undefined ? 'week' : 'day';
    // A tags filter reads raw rows alone (the rollups keep no tags).
    const parts: WindowPart[] = q.tags !== null ? [{ source: 'raw', fromMs: w.sinceMs, toMs: w.untilMs }] : windowParts(w.sinceMs, w.untilMs, coarsest);
    const params: Record<string, unknown> = {};
    if (q.userId !== undefined) params.userId = q.userId;
    const selects = parts.map((p) => (p.source === 'raw' ? this.rawPartSql(q, p, params) : summaryPartSql(q, partSummary(p.source, q.groupBy), p)));
    const bucket = q.bucketMs ? ', p.bucket' : '';
    const sql =
      `SELECT p.group_key${bucket}, ${OUTER_AGGREGATES} FROM (${selects.join(' UNION ALL ')}) p ` + `GROUP BY p.group_key${bucket}`;
    const [query, values] = ds.driver.escapeQueryWithParameters(sql, params, {});
    const rows: RawRow[] = await ds.query(query, values);
    return rows.map((r) => toGroup(r, q.groupBy === 'user')).filter((g) => g.counts.requests > 0);
  }

  /** The raw rows of a part, one output row per call (the measures as the summaries count them). */
  private rawPartSql(q: WindowQuery, p: WindowPart, params: Record<string, unknown>): string {
    const key = q.groupBy === 'model' ? 'u.requested_model' : `COALESCE(u.user_id, '${NO_USER}')`;
    // `bucketMs` is one of two constants and the times are whole numbers computed here, never user text.
    const bucket = q.bucketMs ? `, (u.created_at_ms / ${q.bucketMs}) * ${q.bucketMs} AS bucket` : '';
    const where = [`u.created_at_ms >= ${Math.trunc(p.fromMs)}`];
    if (p.toMs !== null) where.push(`u.created_at_ms < ${Math.trunc(p.toMs)}`);
    if (q.userId !== undefined) where.push('u.user_id = :userId');
    Object.entries(q.tags ?? {}).forEach(([k, value], i) => {
      params[`tag${i}`] = tagLikePattern(k, value);
      where.push(`u.tags LIKE :tag${i} ESCAPE '\\'`);
    });
    return `SELECT ${key} AS group_key${bucket}, ${rawPartMeasures(this.db)} FROM llm_usage u WHERE ${where.join(' AND ')}`;
  }

  /** SELECT key[, bucket], the summed measures FROM a summary table `r` GROUP BY key[, bucket]. */
  private summary(table: string, keyExpr: string, bucketExpr?: string): SelectQueryBuilder<object> {
    let qb = this.read.createQueryBuilder().from(table, 'r').select(keyExpr, 'group_key');
    if (bucketExpr) qb = qb.addSelect(bucketExpr, 'bucket');
    for (const [expr, alias] of SUMMARY_AGGREGATES) qb = qb.addSelect(expr, alias);
    qb = qb.groupBy(keyExpr);
    if (bucketExpr) qb = qb.addGroupBy(bucketExpr);
    return qb;
  }

  /** Users whose calls belong to the task, or null when the task has no usage. */
  private async taskOwners(taskId: string): Promise<(string | null)[] | null> {
    const rows = await this.read
      .createQueryBuilder()
      .from(TASK_TOTALS_TABLE, 'r')
      .select('r.user_id', 'user_id')
      .where('r.task_id = :taskId', { taskId })
      .groupBy('r.user_id')
      .getRawMany<{ user_id: string }>();
    if (rows.length > 0) return rows.map((r) => (r.user_id === NO_USER ? null : r.user_id));
    // A task of the task runner that made no LLM call yet exists too (200 with zeros), as does a
    // task id a gateway call claimed whose record is not written yet.
    const owner = async (table: string, idColumn: string) =>
      this.read
        .createQueryBuilder()
        .select('t.user_id', 'user_id')
        .from(table, 't')
        .where(`t.${idColumn} = :taskId`, { taskId })
        .getRawOne<{ user_id: string | null }>();
    const found = (await owner('tasks', 'id')) ?? (await owner('gateway_tasks', 'task_id'));
    return found ? [found.user_id] : null;
  }

  /**
   * The seed's success rate is about tasks: succeeded / (succeeded + failed) over the tasks created
   * in the window (same rule as /usage/metrics/tasks). Null when none finished, so the caller
   * falls back to the LLM call success rate.
   */
  private async taskSuccessRate(w: Window, principal: Principal): Promise<number | null> {
    // Both counts in one statement over two index ranges (idx_tasks_status_created, or the user's
    // index), not a scan of the window's tasks; FILTER rather than GROUP BY status: no grouping step.
    const qb = this.read
      .createQueryBuilder()
      .from('tasks', 't')
      .select("COUNT(*) FILTER (WHERE t.status = 'succeeded')", 'succeeded')
      .addSelect("COUNT(*) FILTER (WHERE t.status = 'failed')", 'failed')
      .where('t.status IN (:...statuses) AND t.created_at_ms >= :since', { statuses: ['succeeded', 'failed'], since: w.sinceMs });
    if (principal.scope !== 'admin') qb.andWhere('t.user_id = :scopeUserId', { scopeUserId: principal.userId });
    const r = await qb.getRawOne<{ succeeded: unknown; failed: unknown }>();
    const ok = Number(r?.succeeded ?? 0);
    const failed = Number(r?.failed ?? 0);
    return ok + failed === 0 ? null : Math.round((ok / (ok + failed)) * 10_000) / 100;
  }


}

/** The user a principal is limited to, or undefined for an admin key ('(none)' matches no row: a user key without a user sees nothing). */
function scopeUser(principal: Principal): string | undefined {
  return principal.scope === 'admin' ? undefined : (principal.userId ?? NO_USER_KEY);
}

function windowFields(w: Window) {
  return { days: w.days, from: new Date(w.sinceMs).toISOString(), to: new Date(w.untilMs ?? w.nowMs).toISOString() };
}

const int = (v: string | number | null | undefined) => (v === null || v === undefined ? 0 : Number(v));

/** `userKey`: the group key is a user id, where '' (the summaries' key for "no user") means none. */
function toGroup(r: RawRow, userKey: boolean): Group {
  let key = r.group_key === null || r.group_key === undefined ? null : String(r.group_key);
  if (userKey && key === NO_USER) key = null;
  return {
    key,
    bucket: r.bucket === undefined || r.bucket === null ? null : Number(r.bucket),
    counts: {
      requests: int(r.requests),
      tokens: int(r.tokens),
      input_tokens: int(r.input_tokens),
      output_tokens: int(r.output_tokens),
      cached_input_tokens: int(r.cached_input_tokens),
      cache_write_tokens: int(r.cache_write_tokens),
      reasoning_tokens: int(r.reasoning_tokens),
      failed_requests: int(r.failed_requests),
      unpriced_requests: int(r.unpriced_requests),
      estimated_requests: int(r.estimated_requests),
    },
    costNanos: parseNanos(r.cost_nanos),
    latencyUs: parseNanos(r.latency_us),
  };
}

const emptyGroup = (key: string | null, bucket: number | null): Group => ({
  key,
  bucket,
  counts: {
    requests: 0,
    tokens: 0,
    input_tokens: 0,
    output_tokens: 0,
    cached_input_tokens: 0,
    cache_write_tokens: 0,
    reasoning_tokens: 0,
    failed_requests: 0,
    unpriced_requests: 0,
    estimated_requests: 0,
  },
  costNanos: 0n,
  latencyUs: 0n,
});

function addInto(acc: Group, g: Group): void {
  for (const k of Object.keys(acc.counts) as (keyof Group['counts'])[]) acc.counts[k] += g.counts[k];
  acc.costNanos += g.costNanos;
  acc.latencyUs += g.latencyUs;
}

/** Adds groups up; money stays BigInt (exact), so totals always equal the sum of their groups. */
function sum(groups: Group[]): Group {
  const acc = emptyGroup(null, null);
  for (const g of groups) addInto(acc, g);
  return acc;
}

function breakdown(g: Group): UsageBreakdownDto {
  return { ...g.counts, cost_usd: nanosToUsd(g.costNanos), cost_usd_exact: nanosToUsdExact(g.costNanos) };
}

function totals(groups: Group[]): UsageTotalsDto {
  const all = sum(groups);
  const { requests, tokens, ...rest } = all.counts;
  return {
    total_requests: requests,
    total_tokens: tokens,
    total_cost_usd: nanosToUsd(all.costNanos),
    total_cost_usd_exact: nanosToUsdExact(all.costNanos),
    // The mean in microseconds, rounded, then in ms: the same 3 decimals as before rollups.
    avg_latency_ms: requests === 0 ? 0 : Math.round(Number(all.latencyUs) / requests) / 1000,
    ...rest,
  };
}

function byKey(groups: Group[]): Record<string, UsageBreakdownDto> {
  const out: Record<string, UsageBreakdownDto> = {};
  for (const g of groups) out[g.key ?? NO_USER_KEY] = breakdown(g);
  return out;
}

const userKey = (g: Group) => g.key ?? NO_USER_KEY;

/** Order of the user list: cost descending, then user id ascending (stable across pages). */
function compareUsers(g: Group, costNanos: bigint, key: string): number {
  if (g.costNanos !== costNanos) return g.costNanos > costNanos ? -1 : 1;
  const k = userKey(g);
  return k < key ? -1 : k > key ? 1 : 0;
}

function rankUsers(groups: Group[]): Group[] {
  return [...groups].sort((a, b) => compareUsers(a, b.costNanos, userKey(b)));
}

/** The `top` most expensive users by name, the rest added up under "(others)" with their count. */
function topWithOthers(groups: Group[], top: number): Record<string, UsageBreakdownDto> {
  const ranked = rankUsers(groups);
  const out = byKey(ranked.slice(0, top));
  const rest = ranked.slice(top);
  if (rest.length > 0) out[OTHER_USERS_KEY] = { ...breakdown(sum(rest)), users: rest.length };
  return out;
}

function successRate(t: UsageTotalsDto): number {
  if (t.total_requests === 0) return 0;
  return Math.round(((t.total_requests - t.failed_requests) / t.total_requests) * 10_000) / 100;
}
