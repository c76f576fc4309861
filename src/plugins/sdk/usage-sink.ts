import type { PluginModuleBase, PluginOptions } from './version';
import type { UsageRecord } from './usage-record';

/**
 * A destination for usage records (database, metrics, a warehouse, ...).
 *
 * The recorder gives every sink its own bounded queue and calls `write` with batches from it,
 * never on the LLM caller's path. A sink that throws or hangs only affects itself.
 */
export interface UsageSink {
  /** Short stable name, used in logs and in the `sink` label of pipeline metrics. */
  readonly name: string;
  /**
   * Persist or forward a batch. Throwing marks the whole batch failed. A sink that wrote the batch
   * but refused some records for good (data its store can never take; retrying cannot help) may
   * name them: they are counted as dropped for this sink, not as written.
   */
  write(records: readonly UsageRecord[]): Promise<void | UsageSinkWriteResult>;
  /** Delivery policy; every field has a default (see `DEFAULT_SINK_POLICY`). */
  readonly policy?: Partial<UsageSinkPolicy>;
  /** Called once after the final drain on shutdown. */
  close?(): Promise<void>;
}

/** What `UsageSink.write` may answer besides nothing. */
export interface UsageSinkWriteResult {
  /** Ids of the batch's records the sink refused for good (and has logged); the others were written. */
  readonly rejected?: readonly string[];
}

export interface UsageSinkPolicy {
  /** Most records handed to one `write` call. */
  maxBatchSize: number;
  /** A partial batch is written at the latest this long after its first record was queued. */
  flushIntervalMs: number;
  /** Records held in memory for this sink; when full, callers wait for space (nothing is dropped). */
  queueCapacity: number;
  /** A `write` that has not settled after this long counts as failed. */
  writeTimeoutMs: number;
  /**
   * `retry`: a failed batch is retried with backoff until it succeeds (use with idempotent writes);
   * `drop`: a failed batch is logged, counted and dropped for this sink only.
   */
  onFailure: 'retry' | 'drop';
  /** Upper bound of the retry backoff. */
  maxRetryDelayMs: number;
}

export const DEFAULT_SINK_POLICY: UsageSinkPolicy = {
  maxBatchSize: 500,
  flushIntervalMs: 250,
  queueCapacity: 10_000,
  writeTimeoutMs: 10_000,
  onFailure: 'drop',
  maxRetryDelayMs: 5_000,
};

/** Injection token of the array of configured sinks. */
export const USAGE_SINKS = Symbol('USAGE_SINKS');

/** A usage sink plugin module, named in USAGE_SINK_PLUGINS. */
export interface UsageSinkPluginModule extends PluginModuleBase {
  createUsageSink(options: PluginOptions): UsageSink | Promise<UsageSink>;
}
