import { Logger } from '@nestjs/common';
import type { UsageRecord, UsageSink, UsageSinkPolicy, UsageSinkWriteResult } from '../../plugins/sdk';

export interface SinkStats {
  sink: string;
  /** Records waiting or being written. */
  queued: number;
  written: number;
  /** Failed `write` calls (each retry that fails counts once). */
  failedWrites: number;
  /** Records given up on (only for sinks whose policy is `drop`, or at the shutdown deadline). */
  dropped: number;
  /** Records not written by the shutdown deadline that the usage journal keeps for the next start. */
  kept: number;
  /** The latest failed write (message and when), kept after later successes. */
  lastError: { message: string; atMs: number } | null;
  /** True from a failed write until the next successful one. */
  failing: boolean;
}

/** How a queue works with the usage journal. */
export interface SinkQueueHooks {
  /** Awaited before each batch is handed to the sink: the batch's journal entries must be durable first. */
  beforeWrite?: () => Promise<void>;
  /** Told of every batch the sink has written (the database sink's confirm the journal's entries). */
  written?: (batch: readonly UsageRecord[]) => void;
  /** Records still unwritten at the shutdown deadline are kept (in the journal), not dropped. */
  keepAtDeadline?: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

class WriteTimeoutError extends Error {
  constructor(sink: string, ms: number) {
    super(`sink "${sink}" did not finish a write within ${ms} ms`);
  }
}

/**
 * The bounded queue in front of one sink. Records stay in the buffer until their batch is
 * written, so `capacity` bounds everything held for this sink; when it is full, `enqueue`
 * waits for space (the caller is slowed, nothing is dropped).
 */
export class SinkQueue {
  private readonly logger: Logger;
  private readonly buffer: UsageRecord[] = [];
  private readonly spaceWaiters: (() => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private giveUpAt: number | null = null;
  readonly stats: SinkStats;

  constructor(
    readonly sink: UsageSink,
    private readonly policy: UsageSinkPolicy,
    private readonly hooks: SinkQueueHooks = {},
  ) {
    this.logger = new Logger(`UsageSink:${sink.name}`);
    this.stats = { sink: sink.name, queued: 0, written: 0, failedWrites: 0, dropped: 0, kept: 0, lastError: null, failing: false };
  }

  async enqueue(record: UsageRecord): Promise<void> {
    while (this.buffer.length >= this.policy.queueCapacity) {
      await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
    }
    this.buffer.push(record);
    this.stats.queued = this.buffer.length;
    if (this.buffer.length >= this.policy.maxBatchSize) this.kick();
    else if (!this.timer && !this.running) {
      this.timer = setTimeout(() => this.kick(), this.policy.flushIntervalMs);
    }
  }

  /** Resolves when everything queued so far has been written (or given up on). */
  flush(): Promise<void> {
    if (this.buffer.length === 0 && !this.running) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    this.kick();
    return done;
  }

  /**
   * Like `flush`, but a sink still failing at `deadline` gives up on its remaining records: dropped
   * and reported, or counted as `kept` when the journal holds them for the next start.
   */
  drain(deadline: number): Promise<void> {
    this.giveUpAt = deadline;
    return this.flush();
  }

  private kick(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.running) return;
    this.running = true;
    void this.run();
  }

  private async run(): Promise<void> {
    try {
      while (this.buffer.length > 0) {
        // Records that arrived during the previous write form the next batch (group commit).
        const batch = this.buffer.slice(0, this.policy.maxBatchSize);
        await this.deliver(batch);
        this.buffer.splice(0, batch.length);
        this.stats.queued = this.buffer.length;
        this.spaceWaiters.splice(0, batch.length).forEach((wake) => wake());
      }
    } finally {
      this.running = false;
      this.idleWaiters.splice(0).forEach((wake) => wake());
    }
  }

  private async deliver(batch: UsageRecord[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.hooks.beforeWrite?.();
        const rejected = (await this.writeWithTimeout(batch))?.rejected?.length ?? 0;
        this.stats.written += batch.length - rejected;
        this.stats.dropped += rejected;
        this.stats.failing = false;
        this.hooks.written?.(batch);
        if (attempt > 0) this.logger.log(`batch of ${batch.length} written after ${attempt} retries`);
        return;
      } catch (err) {
        this.stats.failedWrites++;
        const reason = err instanceof Error ? err.message : String(err);
        this.stats.lastError = { message: (reason.split('\n')[0] ?? '').slice(0, 500), atMs: Date.now() };
        this.stats.failing = true;
        const pastDeadline = this.giveUpAt !== null && Date.now() >= this.giveUpAt;
        if (pastDeadline && this.hooks.keepAtDeadline) {
          this.stats.kept += batch.length;
          this.logger.warn(`${batch.length} usage records not written by the shutdown deadline stay in the usage journal: ${reason}`);
          return;
        }
        if (this.policy.onFailure === 'drop' || pastDeadline) {
          this.stats.dropped += batch.length;
          this.logger.error(
            `dropped ${batch.length} usage records for this sink${pastDeadline ? ' at the shutdown deadline' : ''}: ${reason}`,
          );
          return;
        }
        const delay = Math.min(this.policy.maxRetryDelayMs, 50 * 2 ** Math.min(attempt, 16));
        this.logger.warn(`write of ${batch.length} records failed (attempt ${attempt + 1}), retrying in ${delay} ms: ${reason}`);
        await sleep(delay);
      }
    }
  }

  private async writeWithTimeout(batch: UsageRecord[]): Promise<void | UsageSinkWriteResult> {
    let timeout: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timeout = setTimeout(() => reject(new WriteTimeoutError(this.sink.name, this.policy.writeTimeoutMs)), this.policy.writeTimeoutMs);
    });
    try {
      // Promise.resolve().then: a sink that throws synchronously is treated like one that rejects.
      const result = await Promise.race([Promise.resolve().then(() => this.sink.write(batch)), timedOut]);
      // Only a well-formed answer counts: a plugin returning something else wrote the whole batch.
      return result && Array.isArray((result as UsageSinkWriteResult).rejected) ? result : undefined;
    } finally {
      clearTimeout(timeout);
    }
  }
}
