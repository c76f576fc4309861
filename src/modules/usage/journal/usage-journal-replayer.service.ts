import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { In, Repository } from 'typeorm';
import type { UsageRecord } from '../../../plugins/sdk';
import { PricingService, PriceQuote } from '../../llm/pricing/pricing.service';
import { LlmUsage } from '../entities/llm-usage.entity';
import { UsageRecorder } from '../usage-recorder.service';
import type { CallStart } from './journal-entry';
import { UsageJournal } from './usage-journal.service';

/** `error_type` of a call the process died during. */
export const INTERRUPTED_ERROR_TYPE = 'interrupted';

const IDS_PER_QUERY = 500;

/**
 * The record of a call that started and never ended (the process died): its locally counted
 * prompt tokens at the input rate, `estimated`. Its latency is the time from its start to the
 * dead run's last journal write: the call ran at least that long (how much longer is unknown).
 */
export function interruptedRecord(call: CallStart, lastWriteMs: number, quote: PriceQuote): UsageRecord {
  return {
    id: call.id,
    createdAtMs: call.createdAtMs,
    taskId: call.taskId,
    userId: call.userId,
    traceId: call.traceId,
    provider: call.provider,
    operation: call.operation,
    requestedModel: call.requestedModel,
    responseModel: null,
    inputTokens: call.promptTokens,
    cachedInputTokens: 0,
    cacheWriteTokens: 0,
    outputTokens: 0,
    reasoningTokens: 0,
    totalTokens: call.promptTokens,
    costNanos: quote.costNanos,
    unpriced: quote.unpriced,
    priceSource: quote.priceSource,
    latencyMs: Math.max(0, Math.round((lastWriteMs - call.createdAtMs) * 1000) / 1000),
    timeToFirstTokenMs: null,
    streamed: call.streamed,
    status: 'error',
    errorType: INTERRUPTED_ERROR_TYPE,
    estimated: true,
    ...(call.tags ? { tags: call.tags } : {}),
  };
}

export interface ReplayResult {
  segments: number;
  /** Finished calls delivered to the sinks (they were not in the database yet). */
  finished: number;
  /** Calls that never ended, recorded as `interrupted`. */
  interrupted: number;
  /** Records the database already held (not delivered again). */
  alreadyStored: number;
  corrupt: number;
}

/**
 * At start, before task workers run and before the API listens, turns what the previous run
 * left in the usage journal into usage records: finished calls the database does not hold yet,
 * and `interrupted` records for calls that never ended. They go through the recorder, so every
 * sink gets them and they are journaled again in this run's segment; then the old segments go.
 */
@Injectable()
export class UsageJournalReplayer implements OnApplicationBootstrap {
  private readonly logger = new Logger(UsageJournalReplayer.name);

  constructor(
    private readonly journal: UsageJournal,
    private readonly recorder: UsageRecorder,
    private readonly pricing: PricingService,
    @InjectRepository(LlmUsage) private readonly usage: Repository<LlmUsage>,
  ) {}

  // onApplicationBootstrap, after every onModuleInit (the journal is open, the sink queues
  // exist). UsageModule is global, and Nest runs the hooks of global modules before those of
  // the others: this replay ends before TaskRunner's onApplicationBootstrap starts the task
  // workers, and the app listens only after every bootstrap hook.
  async onApplicationBootstrap(): Promise<void> {
    if (this.journal.enabled) await this.replay();
  }

  async replay(): Promise<ReplayResult> {
    const left = await this.journal.leftovers();
    const result: ReplayResult = { segments: left.segments, finished: 0, interrupted: 0, alreadyStored: 0, corrupt: left.corrupt };
    if (left.segments === 0) return result;
    const interrupted = left.interrupted.map(({ call, lastWriteMs }) => interruptedRecord(call, lastWriteMs, this.promptCost(call)));
    const stored = await this.storedIds([...left.finished, ...interrupted].map((r) => r.id));
    for (const [records, kind] of [[left.finished, 'finished'], [interrupted, 'interrupted']] as const) {
      for (const r of records) {
        if (stored.has(r.id)) {
          result.alreadyStored++;
          continue;
        }
        await this.recorder.record(r); // journaled again, in this run's segment
        result[kind]++;
      }
    }
    await this.journal.durable();
    await this.journal.retireLeftovers();
    this.logger.log(
      `usage journal replayed (${result.segments} segments): ${result.finished} finished calls not yet stored, ` +
        `${result.interrupted} calls interrupted by the end of the previous run recorded as estimated, ` +
        `${result.alreadyStored} already stored${result.corrupt ? `, ${result.corrupt} damaged entries skipped` : ''}`,
    );
    return result;
  }

  /** The locally counted prompt at the model's input rate (unpriced when the model has no price). */
  private promptCost(call: CallStart): PriceQuote {
    const tokens = { inputTokens: call.promptTokens, cachedInputTokens: 0, cacheWriteTokens: 0, outputTokens: 0, reasoningTokens: 0 };
    return this.pricing.price(tokens, [call.requestedModel], { provider: call.provider, at: call.createdAtMs });
  }

  private async storedIds(ids: string[]): Promise<Set<string>> {
    const stored = new Set<string>();
    for (let i = 0; i < ids.length; i += IDS_PER_QUERY) {
      const rows = await this.usage.find({ select: { id: true }, where: { id: In(ids.slice(i, i + IDS_PER_QUERY)) } });
      for (const r of rows) stored.add(r.id);
    }
    return stored;
  }
}
