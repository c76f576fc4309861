import { Injectable } from '@nestjs/common';
import { DataSource, Repository, SelectQueryBuilder } from 'typeorm';
import { InjectReadDataSource } from '../../database/data-sources';
import { canAccessUser, Principal } from '../auth/principal';
import {
  OverallUsageDto,
  TaskUsageDto,
  TimeseriesBucketDto,
  TimeseriesDto,
  UsageBreakdownDto,
  UsageTotalsDto,
  UserUsageDto,
} from './dto/usage-response.dto';
import { LlmUsage } from './entities/llm-usage.entity';
import { UsageAccessDeniedException, UsageTaskNotFoundException } from './usage.exceptions';
import { nanosToUsd, nanosToUsdExact, parseNanos } from '../../common/money';
import { tagLikePattern, UsageTags } from '../../common/usage-tags';

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
/** Key of calls made without a user in `by_user` / user-grouped timeseries (not a valid user id, so no clash). */
export const NO_USER_KEY = '(none)';

/**
 * Aggregates every query selects. Money is summed in SQL over the integer `cost_nanos` column
 * and cast to text, so no float ever touches it; the same SQL runs on SQLite and PostgreSQL.
 */
const AGGREGATES: [expr: string, alias: string][] = [
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
  ['COALESCE(SUM(u.latency_ms), 0)', 'latency_ms_sum'],
];

type RawRow = Record<string, string | number | null>;

/** One group, with the exact money kept as BigInt until the response is built. */
interface Group {
  key: string | null;
  bucket: number | null;
  counts: Omit<UsageBreakdownDto, 'cost_usd' | 'cost_usd_exact'>;
  costNanos: bigint;
  latencySum: number;
}

interface Window {
  days: number;
  sinceMs: number;
  nowMs: number;
}

/**
 * Read side of the usage API. Every method takes the caller's principal and applies the
 * user-scope rules here (not in the controller), so no path can forget them.
 */
@Injectable()
export class UsageQueryService {
  private readonly usage: Repository<LlmUsage>;

  // The read side: on SQLite its own connection, so a write waiting for a lock never holds up the usage API.
  constructor(@InjectReadDataSource() read: DataSource) {
    this.usage = read.getRepository(LlmUsage);
  }

  /**
   * Usage of one task. The single place that decides whether a task exists and who owns it:
   * today that is "has usage records" (404 otherwise); a tasks table can answer it instead.
   */
  async taskUsage(taskId: string, principal: Principal): Promise<TaskUsageDto> {
    const owners = await this.taskOwners(taskId);
    if (owners === null) throw new UsageTaskNotFoundException(taskId);
    // Another user's task is "not found", as in the task API: a user key cannot tell it exists.
    if (!owners.every((owner) => canAccessUser(principal, owner))) throw new UsageTaskNotFoundException(taskId);
    const groups = await this.groups((qb) => qb.where('u.task_id = :taskId', { taskId }), 'u.requested_model');
    return { task_id: taskId, ...totals(groups), by_model: byKey(groups) };
  }

  /** Everything in the window; a user-scope key sees only its own user's calls. */
  async overallUsage(days: number, principal: Principal, tags: UsageTags | null = null): Promise<OverallUsageDto> {
    const w = window(days);
    const filter = (qb: SelectQueryBuilder<LlmUsage>) => withTags(this.scoped(inWindow(qb, w), principal), tags);
    const byModel = await this.groups(filter, 'u.requested_model');
    const byUser = await this.groups(filter, 'u.user_id');
    const t = totals(byModel);
    return {
      ...windowFields(w),
      ...t,
      success_rate_percent: (await this.taskSuccessRate(w, principal)) ?? successRate(t),
      by_model: byKey(byModel),
      by_user: byKey(byUser),
    };
  }

  async userUsage(userId: string, days: number, principal: Principal, tags: UsageTags | null = null): Promise<UserUsageDto> {
    if (!canAccessUser(principal, userId)) throw new UsageAccessDeniedException(`user "${userId}"`);
    const w = window(days);
    const byModel = await this.groups(
      (qb) => withTags(inWindow(qb.where('u.user_id = :userId', { userId }), w), tags),
      'u.requested_model',
    );
    const t = totals(byModel);
    return { user_id: userId, ...windowFields(w), ...t, success_rate_percent: successRate(t), by_model: byKey(byModel) };
  }

  /** Buckets by integer division of `created_at_ms`: the same SQL on both databases, UTC boundaries. */
  async timeseries(
    days: number,
    interval: 'hour' | 'day',
    groupBy: 'model' | 'user',
    principal: Principal,
    tags: UsageTags | null = null,
  ): Promise<TimeseriesDto> {
    const w = window(days);
    const width = interval === 'hour' ? HOUR_MS : DAY_MS;
    const groups = await this.groups(
      (qb) => withTags(this.scoped(inWindow(qb, w), principal), tags),
      groupBy === 'model' ? 'u.requested_model' : 'u.user_id',
      // `width` is one of two constants, never user text.
      `(u.created_at_ms / ${width}) * ${width}`,
    );
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

  /** Users whose calls belong to the task, or null when the task has no usage. */
  private async taskOwners(taskId: string): Promise<(string | null)[] | null> {
    const rows = await this.usage
      .createQueryBuilder('u')
      .select('u.user_id', 'user_id')
      .where('u.task_id = :taskId', { taskId })
      .groupBy('u.user_id')
      .getRawMany<{ user_id: string | null }>();
    if (rows.length > 0) return rows.map((r) => r.user_id);
    // A task of the task runner that made no LLM call yet exists too (200 with zeros).
    const task = await this.usage.manager
      .createQueryBuilder()
      .select('t.user_id', 'user_id')
      .from('tasks', 't')
      .where('t.id = :taskId', { taskId })
      .getRawOne<{ user_id: string | null }>();
    return task ? [task.user_id] : null;
  }

  /**
   * The seed's success rate is about tasks: succeeded / (succeeded + failed) over the tasks created
   * in the window (same rule as /usage/metrics/tasks). Null when none finished, so the caller
   * falls back to the LLM call success rate.
   */
  private async taskSuccessRate(w: Window, principal: Principal): Promise<number | null> {
    const qb = this.usage.manager
      .createQueryBuilder()
      .from('tasks', 't')
      .select("SUM(CASE WHEN t.status = 'succeeded' THEN 1 ELSE 0 END)", 'ok')
      .addSelect("SUM(CASE WHEN t.status = 'failed' THEN 1 ELSE 0 END)", 'failed')
      .where('t.created_at_ms >= :since', { since: w.sinceMs });
    if (principal.scope !== 'admin') qb.andWhere('t.user_id = :scopeUserId', { scopeUserId: principal.userId });
    const r = await qb.getRawOne<{ ok: unknown; failed: unknown }>();
    const ok = Number(r?.ok ?? 0);
    const failed = Number(r?.failed ?? 0);
    return ok + failed === 0 ? null : Math.round((ok / (ok + failed)) * 10_000) / 100;
  }

  private scoped(qb: SelectQueryBuilder<LlmUsage>, principal: Principal): SelectQueryBuilder<LlmUsage> {
    return principal.scope === 'admin' ? qb : qb.andWhere('u.user_id = :scopeUserId', { scopeUserId: principal.userId });
  }

  private async groups(
    filter: (qb: SelectQueryBuilder<LlmUsage>) => SelectQueryBuilder<LlmUsage>,
    keyExpr: string,
    bucketExpr?: string,
  ): Promise<Group[]> {
    let qb = filter(this.usage.createQueryBuilder('u').select(keyExpr, 'group_key'));
    if (bucketExpr) qb = qb.addSelect(bucketExpr, 'bucket');
    for (const [expr, alias] of AGGREGATES) qb = qb.addSelect(expr, alias);
    qb = qb.groupBy(keyExpr);
    if (bucketExpr) qb = qb.addGroupBy(bucketExpr);
    const rows = await qb.getRawMany<RawRow>();
    return rows.map(toGroup);
  }
}

function window(days: number): Window {
  const nowMs = Date.now();
  return { days, nowMs, sinceMs: nowMs - days * DAY_MS };
}

function inWindow(qb: SelectQueryBuilder<LlmUsage>, w: Window): SelectQueryBuilder<LlmUsage> {
  return qb.andWhere('u.created_at_ms >= :sinceMs', { sinceMs: w.sinceMs });
}

/** Rows carrying every given tag (raw rows only: tags are never aggregated away). */
function withTags(qb: SelectQueryBuilder<LlmUsage>, tags: UsageTags | null): SelectQueryBuilder<LlmUsage> {
  Object.entries(tags ?? {}).forEach(([key, value], i) => {
    qb.andWhere(`u.tags LIKE :tag${i} ESCAPE '\\'`, { [`tag${i}`]: tagLikePattern(key, value) });
  });
  return qb;
}

function windowFields(w: Window) {
  return { days: w.days, from: new Date(w.sinceMs).toISOString(), to: new Date(w.nowMs).toISOString() };
}

const int = (v: string | number | null | undefined) => (v === null || v === undefined ? 0 : Number(v));

function toGroup(r: RawRow): Group {
  return {
    key: r.group_key === null ? null : String(r.group_key),
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
    latencySum: Number(r.latency_ms_sum ?? 0),
  };
}

/** Adds groups up; money stays BigInt (exact), so totals always equal the sum of their groups. */
function sum(groups: Group[]): Group {
  const acc: Group = {
    key: null,
    bucket: null,
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
    latencySum: 0,
  };
  for (const g of groups) {
    for (const k of Object.keys(acc.counts) as (keyof Group['counts'])[]) acc.counts[k] += g.counts[k];
    acc.costNanos += g.costNanos;
    acc.latencySum += g.latencySum;
  }
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
    avg_latency_ms: requests === 0 ? 0 : Math.round((all.latencySum / requests) * 1000) / 1000,
    ...rest,
  };
}

function byKey(groups: Group[]): Record<string, UsageBreakdownDto> {
  const out: Record<string, UsageBreakdownDto> = {};
  for (const g of groups) out[g.key ?? NO_USER_KEY] = breakdown(g);
  return out;
}

function successRate(t: UsageTotalsDto): number {
  if (t.total_requests === 0) return 0;
  return Math.round(((t.total_requests - t.failed_requests) / t.total_requests) * 10_000) / 100;
}
