import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { assertUniqueNames } from '../../common/extension-point';
import { appConfig } from '../../config/app.config';
import { usageConfig } from '../../config/usage.config';
import { DEFAULT_SINK_POLICY, USAGE_SINKS, UsageRecord, UsageSink } from '../../plugins/sdk';
import { SinkQueue, SinkStats } from './sink-queue';

/**
 * Fans every usage record out to every sink. `record` returns once the record sits in each
 * sink's queue; the writes happen in the background, in batches. Shutdown drains the queues.
 */
@Injectable()
export class UsageRecorder implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger(UsageRecorder.name);
  private queues: SinkQueue[] = [];

  constructor(
    @Inject(USAGE_SINKS) private readonly sinks: UsageSink[],
    @Inject(usageConfig.KEY) private readonly config: ConfigType<typeof usageConfig>,
    @Inject(appConfig.KEY) private readonly app: ConfigType<typeof appConfig>,
  ) {}

  onModuleInit(): void {
    assertUniqueNames(this.sinks, 'usage sink');
    this.queues = this.sinks.map(
      (sink) =>
        new SinkQueue(sink, {
          ...DEFAULT_SINK_POLICY,
          maxBatchSize: this.config.batchSize,
          flushIntervalMs: this.config.flushIntervalMs,
          queueCapacity: this.config.queueCapacity,
          ...sink.policy,
        }),
    );
    this.logger.log(`usage sinks: ${this.sinks.map((s) => s.name).join(', ') || '(none)'}`);
  }

  async record(record: UsageRecord): Promise<void> {
    await Promise.all(this.queues.map((q) => q.enqueue(record)));
  }

  /** Waits until every record queued so far has reached every sink. */
  async flush(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.flush()));
  }

  stats(): SinkStats[] {
    return this.queues.map((q) => ({ ...q.stats }));
  }

  // Before (not on) application shutdown: the database connection is closed in
  // onApplicationShutdown, and the database sink needs it for the final drain.
  async beforeApplicationShutdown(signal?: string): Promise<void> {
    const deadline = Date.now() + this.app.shutdownDrainTimeoutMs;
    const pending = this.queues.reduce((n, q) => n + q.stats.queued, 0);
    if (pending > 0) this.logger.log(`draining ${pending} queued usage records${signal ? ` (${signal})` : ''}`);
    await Promise.all(this.queues.map((q) => q.drain(deadline)));
    this.logger.log(
      `usage queues drained: ${this.queues.map(({ stats: s }) => `${s.sink} ${s.written} written${s.dropped ? `, ${s.dropped} dropped` : ''}`).join('; ')}`,
    );
    const results = await Promise.allSettled(this.sinks.map((s) => s.close?.()));
    results.forEach((r, i) => {
      if (r.status === 'rejected') this.logger.error(`sink "${this.sinks[i].name}" failed to close: ${String(r.reason)}`);
    });
  }
}
