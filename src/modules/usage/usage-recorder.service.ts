import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { assertUniqueNames } from '../../common/extension-point';
import { appConfig } from '../../config/app.config';
import { usageConfig } from '../../config/usage.config';
import { DEFAULT_SINK_POLICY, USAGE_SINKS, UsageRecord, UsageSink } from '../../plugins/sdk';
import { CONFIRMING_SINK } from './journal/journal.constants';
import { UsageJournal } from './journal/usage-journal.service';
import { PluginRegistry } from '../plugins/plugin-registry.service';
import { SinkQueue, SinkQueueHooks, SinkStats } from './sink-queue';

/**
 * Fans every usage record out to every sink. `record` journals the record, then returns once it
 * sits in each sink's queue; the writes happen in the background, in batches, each batch only
 * once its journal entries are durable. Shutdown drains the queues; with the journal on, what
 * the database sink could not write by the deadline stays in the journal for the next start.
 */
@Injectable()
export class UsageRecorder implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger(UsageRecorder.name);
  private queues: SinkQueue[] = [];

  constructor(
    @Inject(USAGE_SINKS) private readonly sinks: UsageSink[],
    @Inject(usageConfig.KEY) private readonly config: ConfigType<typeof usageConfig>,
    @Inject(appConfig.KEY) private readonly app: ConfigType<typeof appConfig>,
    private readonly journal: UsageJournal,
    private readonly registry: PluginRegistry,
  ) {}

  onModuleInit(): void {
    assertUniqueNames(this.sinks, 'usage sink');
    this.queues = this.sinks.map(
      (sink) =>
        new SinkQueue(
          sink,
          {
            ...DEFAULT_SINK_POLICY,
            maxBatchSize: this.config.batchSize,
            flushIntervalMs: this.config.flushIntervalMs,
            queueCapacity: this.config.queueCapacity,
            ...sink.policy,
          },
          this.journalHooks(sink),
        ),
    );
    for (const { stats } of this.queues) {
      this.registry.handle('sink', stats.sink)?.track(() => ({
        queueDepth: stats.queued,
        written: stats.written,
        errors: stats.failedWrites,
        lastError: stats.lastError,
        failing: stats.failing,
      }));
    }
    if (this.journal.enabled && !this.sinks.some((s) => s.name === CONFIRMING_SINK)) {
      this.logger.warn(`no "${CONFIRMING_SINK}" sink: the usage journal is never confirmed and only grows`);
    }
    this.logger.log(`usage sinks: ${this.sinks.map((s) => s.name).join(', ') || '(none)'}`);
  }

  /** No sink sees a record before its journal entry is durable; the database sink's writes settle entries. */
  private journalHooks(sink: UsageSink): SinkQueueHooks {
    if (!this.journal.enabled) return {};
    const hooks: SinkQueueHooks = { beforeWrite: () => this.journal.durable() };
    if (sink.name !== CONFIRMING_SINK) return hooks;
    return { ...hooks, written: (batch) => this.journal.confirmed(batch.map((r) => r.id)), keepAtDeadline: true };
  }

  /**
   * Hands a call's record to the journal and to every sink's queue. Resolves once the journal's
   * operating system has the record (not the disk: each queue waits for that before writing), so
   * a caller that answers its client after this has made the answer's record survive a kill.
   */
  async record(record: UsageRecord): Promise<void> {
    await Promise.all([this.journal.ended(record), ...this.queues.map((q) => q.enqueue(record))]);
  }

  /** Waits until every record queued so far has reached every sink. */
  async flush(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.flush()));
  }

  stats(): SinkStats[] {
    return this.queues.map((q) => ({ ...q.stats, lastError: q.stats.lastError && { ...q.stats.lastError } }));
  }

  // Before (not on) application shutdown: the database connection is closed in
  // onApplicationShutdown, and the database sink needs it for the final drain.
  async beforeApplicationShutdown(signal?: string): Promise<void> {
    const deadline = Date.now() + this.app.shutdownDrainTimeoutMs;
    const pending = this.queues.reduce((n, q) => n + q.stats.queued, 0);
    if (pending > 0) this.logger.log(`draining ${pending} queued usage records${signal ? ` (${signal})` : ''}`);
    await Promise.all(this.queues.map((q) => q.drain(deadline)));
    this.logger.log(
      `usage queues drained: ${this.queues
        .map(({ stats: s }) => `${s.sink} ${s.written} written${s.dropped ? `, ${s.dropped} dropped` : ''}${s.kept ? `, ${s.kept} kept` : ''}`)
        .join('; ')}`,
    );
    const kept = this.queues.reduce((n, q) => n + q.stats.kept, 0);
    if (kept > 0) this.logger.warn(`${kept} usage records not yet in the database are kept in the usage journal (${this.journal.dir}) for the next start`);
    const results = await Promise.allSettled(this.sinks.map((s) => s.close?.()));
    results.forEach((r, i) => {
      if (r.status === 'rejected') this.logger.error(`sink "${this.sinks[i].name}" failed to close: ${String(r.reason)}`);
    });
  }
}
