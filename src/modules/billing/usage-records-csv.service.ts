import { Inject, Injectable, Logger } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { stringify } from 'csv-stringify';
import { pipeline, Readable } from 'node:stream';
import { DataSource, Repository } from 'typeorm';
import { nanosToUsdExact, parseNanos } from '../../common/money';
import { billingConfig } from '../../config/billing.config';
import { InjectReadDataSource } from '../../database/data-sources';
import { canAccessUser, Principal } from '../auth/principal';
import { LlmUsage } from '../usage/entities/llm-usage.entity';
import { UsageAccessDeniedException } from '../usage/usage.exceptions';
import { csvOptions } from './billing-csv';
import { parseBound } from './billing-period';
import { BillingInvalidInputException } from './billing.exceptions';
import { UsageRecordsCsvQueryDto } from './dto/usage-records-csv-query.dto';
import { RAW_RECORD_COLUMNS } from '../usage/raw-record-columns';

/** Rows read per query: memory stays at one page however long the range is. */
export const RECORDS_PAGE_SIZE = 2_000;

export const RECORD_COLUMNS = [
  'id',
  'created_at',
  'task_id',
  'user_id',
  'trace_id',
  'provider',
  'operation',
  'requested_model',
  'response_model',
  'status',
  'error_type',
  'input_tokens',
  'cached_input_tokens',
  'cache_write_tokens',
  'output_tokens',
  'reasoning_tokens',
  'total_tokens',
  'cost_usd',
  'unpriced',
  'estimated',
  'price_source',
  'latency_ms',
  'ttft_ms',
  'streamed',
] as const;

type RawRecord = Record<string, string | number | boolean | null>;

interface RecordFilter {
  fromMs: number;
  toMs: number;
  userId?: string;
  model?: string;
  taskId?: string;
}

/**
 * Raw usage records as CSV, streamed: pages in (created_at_ms, id) order read by keyset (never
 * OFFSET), each written out before the next is read, so a response of any length holds one page.
 */
@Injectable()
export class UsageRecordsCsvService {
  private readonly logger = new Logger(UsageRecordsCsvService.name);

  private readonly usage: Repository<LlmUsage>;

  // The read side (its own SQLite connection): a long download never holds up writers.
  constructor(
    @InjectReadDataSource() read: DataSource,
    @Inject(billingConfig.KEY) private readonly config: ConfigType<typeof billingConfig>,
  ) {
    this.usage = read.getRepository(LlmUsage);
  }

  /** Checks the query (400 naming the field, 403 for another user's records) before any byte is sent. */
  filter(query: UsageRecordsCsvQueryDto, principal: Principal, nowMs = Date.now()): RecordFilter {
    const tz = this.config.timeZone;
    const fromMs = query.from === undefined ? 0 : parseBound(query.from, tz);
    if (fromMs === null) throw new BillingInvalidInputException(`from must be an ISO 8601 date (2026-11-25) or timestamp (2026-11-25T00:00:00Z), got "${query.from}"`);
    const toMs = query.to === undefined ? nowMs + 1 : parseBound(query.to, tz);
    if (toMs === null) throw new BillingInvalidInputException(`to must be an ISO 8601 date (2026-11-26) or timestamp (2026-11-26T00:00:00Z), got "${query.to}"`);
    if (toMs <= fromMs) throw new BillingInvalidInputException('to must be after from (the range is [from, to))');
    if (query.user_id !== undefined && !canAccessUser(principal, query.user_id)) throw new UsageAccessDeniedException(`user "${query.user_id}"`);
    const userId = principal.scope === 'admin' ? query.user_id : (principal.userId as string);
    return { fromMs, toMs, userId, model: query.model, taskId: query.task_id };
  }

  /** The CSV bytes, read page by page as the consumer pulls (backpressure through the pipe). */
  stream(filter: RecordFilter): Readable {
    // pipeline, not pipe: a client that goes away destroys the stringifier, and with it the reader.
    // The status line is already sent, so a read that fails mid-way can only cut the response short
    // (the client sees an incomplete body); it is logged here.
    return pipeline(Readable.from(this.records(filter)), stringify(csvOptions(RECORD_COLUMNS)), (err) => {
      if (err && (err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') this.logger.error(`records.csv stream failed: ${err.message}`);
    });
  }

  private async *records(f: RecordFilter): AsyncGenerator<Record<string, string>> {
    let after: { ms: number; id: string } | null = null;
    for (;;) {
      const qb = this.usage
        .createQueryBuilder('u')
        .select(RAW_RECORD_COLUMNS)
        // After the first page the range starts at the last row's time, so each page is an index range
        // scan from where the previous one stopped (an OR alone would rescan from `from` every page).
        .where('u.created_at_ms >= :fromMs AND u.created_at_ms < :toMs', { fromMs: after ? Math.max(f.fromMs, after.ms) : f.fromMs, toMs: f.toMs });
      if (f.userId !== undefined) qb.andWhere('u.user_id = :userId', { userId: f.userId });
      if (f.model !== undefined) qb.andWhere('u.requested_model = :model', { model: f.model });
      if (f.taskId !== undefined) qb.andWhere('u.task_id = :taskId', { taskId: f.taskId });
      if (after) qb.andWhere('(u.created_at_ms > :afterMs OR u.id > :afterId)', { afterMs: after.ms, afterId: after.id });
      const page = await qb.orderBy('u.created_at_ms', 'ASC').addOrderBy('u.id', 'ASC').limit(RECORDS_PAGE_SIZE).getRawMany<RawRecord>();
      for (const r of page) yield toCsvRecord(r);
      if (page.length < RECORDS_PAGE_SIZE) return;
      const last = page[page.length - 1];
      after = { ms: Number(last.created_at_ms), id: String(last.id) };
    }
  }
}

const text = (v: unknown) => (v === null || v === undefined ? '' : String(v));
const bool = (v: unknown) => (v === true || v === 1 || v === '1' || v === 't' || v === 'true' ? 'true' : 'false');

function toCsvRecord(r: RawRecord): Record<string, string> {
  return {
    id: text(r.id),
    created_at: new Date(Number(r.created_at_ms)).toISOString(),
    task_id: text(r.task_id),
    user_id: text(r.user_id),
    trace_id: text(r.trace_id),
    provider: text(r.provider),
    operation: text(r.operation),
    requested_model: text(r.requested_model),
    response_model: text(r.response_model),
    status: text(r.status),
    error_type: text(r.error_type),
    input_tokens: text(r.input_tokens),
    cached_input_tokens: text(r.cached_input_tokens),
    cache_write_tokens: text(r.cache_write_tokens),
    output_tokens: text(r.output_tokens),
    reasoning_tokens: text(r.reasoning_tokens),
    total_tokens: text(r.total_tokens),
    cost_usd: r.cost_nanos === null || r.cost_nanos === undefined ? '' : nanosToUsdExact(parseNanos(r.cost_nanos)),
    unpriced: bool(r.unpriced),
    estimated: bool(r.estimated),
    price_source: text(r.price_source),
    latency_ms: text(r.latency_ms),
    ttft_ms: text(r.ttft_ms),
    streamed: bool(r.streamed),
  };
}
