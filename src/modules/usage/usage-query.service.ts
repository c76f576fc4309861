import { Inject, Injectable } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { DataSource, SelectQueryBuilder } from 'typeorm';
import { usageConfig } from '../../config/usage.config';
import { InjectReadDataSource } from '../../database/data-sources';
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
  ceilDay,
  ceilHour,
  DAILY_MODEL,
  DAILY_USER,
  DAY_MS,
  DbType,
  floorDay,
  floorHour,
  HOUR_MS,
  HOURLY,
  latencyUsExpr,
  NO_USER,
  rawHorizonMs,
  Summary,
  TASK_TOTALS_TABLE,
} from './rollups/rollup-schema';
import { decodeUserCursor, encodeUserCursor, UserCursor } from './user-cursor';
import { tagLikePattern, UsageTags } from '../../common/usage-tags';

/** Key of calls made without a user in `by_user` / user-grouped timeseries (not a valid user id, so no clash). */
export const NO_USER_KEY = '(none)';
/** Key of the users beyond `top_users` in `by_user` (not a valid user id either). */
export const OTHER_USERS_KEY = '(others)';

/**
 * What every query selects, over raw rows (`u`) or over a summary table (`r`: the hourly rollup or
 * the task totals, whose columns are sums of the same things). Money is summed in SQL over integer
 * nano-dollars and cast to text, so no float ever touches it; latency is summed in whole
 * microseconds (see rollup-schema.ts), so both paths agree exactly. Same SQL on SQLite and PostgreSQL.
 */
function rawAggregates(db: DbType): [expr: string, alias: string][] {
  return [
    ['COUNT(*)', 'requests'],
    ['COALESCE(SUM(u.total_tokens), 0)', 'tokens'],
    ['COALESCE(SUM(u.input_tokens), 0)', 'input_tokens'],
    ['COALESCE(SUM(u.output_tokens), 0)', 'output_tokens'],
    ['COALESCE(SUM(u.cached_input_tokens), 0)', 'cached_input_tokens'],
    ['COALESCE(SUM(u.cache_write_tokens), 0)', 'cache_write_tokens'],
    ['COALESCE(SUM(u.reasoning_tokens), 0)', 'reasoning_tokens'],
    ["SUM(CASE WHEN u.status = 'success' THEN 0 ELSE 1 END)", 'failed_requests'],
    ['SUM(CASE WHEN u.unpriced THEN 1 ELSE 0 END)', 'unpriced_requests'],
    ['SUM(CASE WHEN u.estimated THEN 1 ELSE 0 END)', 'estimated_requests'],
    ['CAST(SUM(u.cost_nanos) AS TEXT)', 'cost_nanos'],
    [`CAST(COALESCE(SUM(${latencyUsExpr(db)}), 0) AS TEXT)`, 'latency_us'],
  ];
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
 * Windows are answered from the daily and hourly rollups for their whole days and hours and from
 * raw rows only for the partial hours at each end; task usage from the per-task totals. Both summaries are kept in
 * the transaction that writes the raw rows, so every answer is exact to the nano-dollar.
 */
@Injectable()
export class UsageQueryService {
  private readonly db: DbType;

  // The read side: on SQLite its own connection, so a write waiting for a lock never holds up the usage API.
  constructor(
    @InjectReadDataSource() private readonly read: DataSource,
    @Inject(usageConfig.KEY) private readonly config: ConfigType<typeof usageConfig>,
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
    const byModel = await this.windowGroups({ w, userId, groupBy: 'model', tags });
    const byUser = await this.windowGroups({ w, userId, groupBy: 'user', tags });
    const t = totals(byModel);
    return {
      ...windowFields(w),
      ...t,
      success_rate_percent: (await this.taskSuccessRate(w, principal)) ?? successRate(t),
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
   * Groups of a window: the partial hours at each end from raw rows; whole hours from the hourly
   * rollup; and, when the query is not limited to one user and buckets are days (or none), whole
   * UTC days from the daily rollup of its grouping (a row per model or user a day), hours only for
   * the partial days around them. Merged by (key, bucket). The parts never overlap: each is split
   * from the next on the same hour or day boundary.
   */
  private async windowGroups(q: WindowQuery): Promise<Group[]> {
    const { w } = q;
    const end = w.untilMs ?? w.nowMs;
    const h0 = ceilHour(w.sinceMs);
    const h1 = floorHour(end);
    if (h0 >= h1 || q.tags !== null) return merge(await this.rawGroups(q, w.sinceMs, w.untilMs));
    const parts: Group[][] = [];
    if (w.sinceMs < h0) parts.push(await this.rawGroups(q, w.sinceMs, h0));
    parts.push(await this.rawGroups(q, h1, w.untilMs));
    const daily = q.userId === undefined && (q.bucketMs === undefined || q.bucketMs === DAY_MS) ? (q.groupBy === 'model' ? DAILY_MODEL : DAILY_USER) : null;
    const d0 = ceilDay(h0);
    const d1 = floorDay(h1);
    if (daily && d0 < d1) {
      parts.push(await this.rollupGroups(q, daily, d0, d1));
      if (h0 < d0) parts.push(await this.rollupGroups(q, HOURLY, h0, d0));
      if (d1 < h1) parts.push(await this.rollupGroups(q, HOURLY, d1, h1));
    } else {
      parts.push(await this.rollupGroups(q, HOURLY, h0, h1));
    }
    return merge(parts.flat());
  }

  /** Groups of a rollup over `[fromMs, toMs)` (boundaries of its time column). */
  private async rollupGroups(q: WindowQuery, summary: Summary, fromMs: number, toMs: number): Promise<Group[]> {
    const time = `r.${summary.keys[0]}`;
    const key = q.groupBy === 'model' ? 'r.requested_model' : 'r.user_id';
    const qb = this.summary(summary.table, key, q.bucketMs ? `(${time} / ${q.bucketMs}) * ${q.bucketMs}` : undefined).where(
      `${time} >= :fromMs AND ${time} < :toMs`,
      { fromMs, toMs },
    );
    if (q.userId !== undefined) qb.andWhere('r.user_id = :userId', { userId: q.userId });
    return (await qb.getRawMany<RawRow>()).map((r) => toGroup(r, q.groupBy === 'user'));
  }

  private async rawGroups(q: WindowQuery, fromMs: number, toMs: number | null): Promise<Group[]> {
    const key = q.groupBy === 'model' ? 'u.requested_model' : `COALESCE(u.user_id, '${NO_USER}')`;
    // `bucketMs` is one of two constants, never user text.
    const bucket = q.bucketMs ? `(u.created_at_ms / ${q.bucketMs}) * ${q.bucketMs}` : undefined;
    let qb = this.read.createQueryBuilder().from('llm_usage', 'u').select(key, 'group_key');
    if (bucket) qb = qb.addSelect(bucket, 'bucket');
    for (const [expr, alias] of rawAggregates(this.db)) qb = qb.addSelect(expr, alias);
    qb = qb.where('u.created_at_ms >= :fromMs', { fromMs });
    if (toMs !== null) qb = qb.andWhere('u.created_at_ms < :toMs', { toMs });
    if (q.userId !== undefined) qb = qb.andWhere('u.user_id = :userId', { userId: q.userId });
    Object.entries(q.tags ?? {}).forEach(([k, value], i) => {
      qb = qb.andWhere(`u.tags LIKE :tag${i} ESCAPE '\\'`, { [`tag${i}`]: tagLikePattern(k, value) });
    });
    qb = qb.groupBy(key);
    if (bucket) qb = qb.addGroupBy(bucket);
    return (await qb.getRawMany<RawRow>()).map((r) => toGroup(r, q.groupBy === 'user'));
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
    // One COUNT per status: each an index range (idx_tasks_status_created, or the user's index), not a scan of the window's tasks.
    const count = async (status: string) => {
      const qb = this.read
        .createQueryBuilder()
        .from('tasks', 't')
        .select('COUNT(*)', 'n')
        .where('t.status = :status AND t.created_at_ms >= :since', { status, since: w.sinceMs });
      if (principal.scope !== 'admin') qb.andWhere('t.user_id = :scopeUserId', { scopeUserId: principal.userId });
      return Number((await qb.getRawOne<{ n: unknown }>())?.n ?? 0);
    };
    const ok = await count('succeeded');
    const failed = await count('failed');
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

/** One group per (key, bucket): the rollup part and the raw edges of the same group added up. */
function merge(groups: Group[]): Group[] {
  const out = new Map<string, Group>();
  for (const g of groups) {
    const id = `${g.key === null ? '\u0000' : g.key}\u0001${g.bucket ?? ''}`;
    let acc = out.get(id);
    if (!acc) out.set(id, (acc = emptyGroup(g.key, g.bucket)));
    addInto(acc, g);
  }
  return [...out.values()].filter((g) => g.counts.requests > 0);
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
