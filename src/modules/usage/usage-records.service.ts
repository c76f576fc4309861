import { Injectable } from '@nestjs/common';
import { DateTime } from 'luxon';
import { DataSource, Repository, SelectQueryBuilder } from 'typeorm';
import { decodeKeysetCursor, encodeKeysetCursor } from '../../common/keyset-cursor';
import { nanosToUsd, nanosToUsdExact, parseNanos } from '../../common/money';
import { tagsFromColumn } from '../../common/usage-tags';
import { InjectReadDataSource } from '../../database/data-sources';
import { canAccessUser, Principal } from '../auth/principal';
import { UsageRecordsQueryDto } from './dto/usage-records-query.dto';
import { UsageLatencyDto, UsageRecordDto, UsageRecordListDto } from './dto/usage-records-response.dto';
import { LlmUsage } from './entities/llm-usage.entity';
import { UsageAccessDeniedException, UsageRecordsInvalidQueryException } from './usage.exceptions';
import { hasPossibleUtcOffset } from '../../common/utc-offset';
import { RAW_RECORD_COLUMNS } from './raw-record-columns';

const DAY_MS = 86_400_000;
const DEFAULT_LIMIT = 50;

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
// An offset is required: a timestamp without one would mean a different instant on every server.
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/i;

/** Milliseconds of an ISO 8601 timestamp with an offset, or of a date at UTC midnight; null otherwise. */
export function parseInstant(value: string): number | null {
  if (!DATE_ONLY.test(value) && !TIMESTAMP.test(value)) return null;
  if (!hasPossibleUtcOffset(value)) return null;
  const dt = DateTime.fromISO(value, { zone: 'utc' });
  return dt.isValid ? dt.toMillis() : null;
}

type RawRecord = Record<string, string | number | boolean | null>;

/**
 * Raw usage records, one per LLM call, for the per-call views (the dashboard's task page, any
 * client drilling into a total). Reads the raw rows, never the rollups, on the read connection.
 */
@Injectable()
export class UsageRecordsService {
  private readonly usage: Repository<LlmUsage>;

  constructor(@InjectReadDataSource() read: DataSource) {
    this.usage = read.getRepository(LlmUsage);
  }

  /** A page, newest first, by keyset on (created_at_ms, id): no OFFSET, so page 1,000 costs what page 1 does. */
  async list(query: UsageRecordsQueryDto, principal: Principal, nowMs = Date.now()): Promise<UsageRecordListDto> {
    const fromMs = query.from === undefined ? null : parseInstant(query.from);
    if (query.from !== undefined && fromMs === null) throw new UsageRecordsInvalidQueryException(`from must be an ISO 8601 timestamp with a time zone (2026-11-25T10:00:00Z) or a UTC date (2026-11-25), got "${query.from}"`);
    const toMs = query.to === undefined ? null : parseInstant(query.to);
    if (query.to !== undefined && toMs === null) throw new UsageRecordsInvalidQueryException(`to must be an ISO 8601 timestamp with a time zone (2026-11-26T00:00:00Z) or a UTC date (2026-11-26), got "${query.to}"`);
    if (fromMs !== null && toMs !== null && toMs <= fromMs) throw new UsageRecordsInvalidQueryException('to must be after from (the range is [from, to))');
    let after = null;
    if (query.cursor !== undefined) {
      after = decodeKeysetCursor(query.cursor);
      if (!after) throw new UsageRecordsInvalidQueryException('cursor is not valid: pass the next_cursor of a previous page unchanged');
    }
    if (query.user_id !== undefined && !canAccessUser(principal, query.user_id)) throw new UsageAccessDeniedException(`user "${query.user_id}"`);
    const limit = query.limit ?? DEFAULT_LIMIT;

    const qb = this.usage.createQueryBuilder('u').select(RAW_RECORD_COLUMNS);
    const upper = Math.min(toMs ?? nowMs + 1, after ? after.ms + 1 : Number.MAX_SAFE_INTEGER);
    // The upper bound moves down to the cursor's time, so each page is one index range scan.
    qb.where('u.created_at_ms < :upper', { upper });
    if (fromMs !== null) qb.andWhere('u.created_at_ms >= :fromMs', { fromMs });
    if (after) qb.andWhere('(u.created_at_ms < :afterMs OR u.id < :afterId)', { afterMs: after.ms, afterId: after.id });
    scope(qb, principal);
    if (query.user_id !== undefined) qb.andWhere('u.user_id = :userId', { userId: query.user_id });
    if (query.task_id !== undefined) qb.andWhere('u.task_id = :taskId', { taskId: query.task_id });
    if (query.model !== undefined) qb.andWhere('u.requested_model = :model', { model: query.model });
    if (query.status !== undefined) qb.andWhere('u.status = :status', { status: query.status });
    const rows = await qb.orderBy('u.created_at_ms', 'DESC').addOrderBy('u.id', 'DESC').limit(limit + 1).getRawMany<RawRecord>();
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      records: page.map(toDto),
      next_cursor: rows.length > limit && last ? encodeKeysetCursor({ ms: Number(last.created_at_ms), id: String(last.id) }) : null,
    };
  }

  /**
   * Median and 95th percentile latency of the calls in the last `days`, nearest rank, exact. Sorting
   * every call of a month (an ORDER BY ... OFFSET) took 6.5 s on 1,000,000 SQLite rows; instead one
   * pass counts the calls per 10 ms bucket, and only the calls of the bucket holding the rank are
   * sorted. The bucket expression is the same in both queries, so the rounding of CAST (SQLite
   * truncates, PostgreSQL rounds) only moves bucket edges, never loses a call.
   */
  async latency(days: number, principal: Principal): Promise<UsageLatencyDto> {
    const nowMs = Date.now();
    const sinceMs = nowMs - days * DAY_MS;
    const base = () => scope(this.usage.createQueryBuilder('u').where('u.created_at_ms >= :sinceMs', { sinceMs }), principal);
    const bucketRows = await base()
      .select(LATENCY_BUCKET, 'b')
      .addSelect('COUNT(*)', 'n')
      .groupBy(LATENCY_BUCKET)
      .getRawMany<{ b: unknown; n: unknown }>();
    const buckets = bucketRows.map((r) => ({ b: Number(r.b), n: Number(r.n) })).sort((x, y) => x.b - y.b);
    const count = buckets.reduce((acc, x) => acc + x.n, 0);
    const at = async (p: number): Promise<number | null> => {
      if (count === 0) return null;
      let rank = Math.ceil(p * count); // 1-based
      for (const { b, n } of buckets) {
        if (rank > n) {
          rank -= n;
          continue;
        }
        const r = await base()
          .andWhere(`${LATENCY_BUCKET} = :b`, { b })
          .select('u.latency_ms', 'latency_ms')
          .orderBy('u.latency_ms', 'ASC')
          .offset(rank - 1)
          .limit(1)
          .getRawOne<{ latency_ms: unknown }>();
        return r ? Number(r.latency_ms) : null;
      }
      return null;
    };
    return {
      days,
      from: new Date(sinceMs).toISOString(),
      to: new Date(nowMs).toISOString(),
      requests: count,
      p50_latency_ms: await at(0.5),
      p95_latency_ms: await at(0.95),
    };
  }
}

/** 10 ms buckets of latency: a bucket's calls are few enough to sort whatever the window holds. */
const LATENCY_BUCKET = 'CAST(u.latency_ms / 10 AS INTEGER)';

function scope(qb: SelectQueryBuilder<LlmUsage>, principal: Principal): SelectQueryBuilder<LlmUsage> {
  return principal.scope === 'admin' ? qb : qb.andWhere('u.user_id = :scopeUserId', { scopeUserId: principal.userId });
}


const str = (v: unknown) => (v === null || v === undefined ? null : String(v));
const int = (v: unknown) => (v === null || v === undefined ? 0 : Number(v));
// SQLite returns booleans as 0/1, PostgreSQL as true/false.
const bool = (v: unknown) => v === true || v === 1 || v === '1' || v === 't' || v === 'true';

function toDto(r: RawRecord): UsageRecordDto {
  const nanos = r.cost_nanos === null || r.cost_nanos === undefined ? null : parseNanos(r.cost_nanos);
  return {
    id: String(r.id),
    created_at: new Date(Number(r.created_at_ms)).toISOString(),
    task_id: str(r.task_id),
    user_id: str(r.user_id),
    trace_id: str(r.trace_id),
    provider: String(r.provider),
    operation: String(r.operation),
    requested_model: String(r.requested_model),
    response_model: str(r.response_model),
    status: String(r.status),
    error_type: str(r.error_type),
    input_tokens: int(r.input_tokens),
    cached_input_tokens: int(r.cached_input_tokens),
    cache_write_tokens: int(r.cache_write_tokens),
    output_tokens: int(r.output_tokens),
    reasoning_tokens: int(r.reasoning_tokens),
    total_tokens: int(r.total_tokens),
    cost_usd: nanos === null ? null : nanosToUsd(nanos),
    cost_usd_exact: nanos === null ? null : nanosToUsdExact(nanos),
    unpriced: bool(r.unpriced),
    estimated: bool(r.estimated),
    price_source: str(r.price_source),
    latency_ms: Number(r.latency_ms),
    ttft_ms: r.ttft_ms === null || r.ttft_ms === undefined ? null : Number(r.ttft_ms),
    streamed: bool(r.streamed),
    tags: tagsFromColumn(str(r.tags)),
  };
}
