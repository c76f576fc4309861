import { NANOS_PER_USD, UsageOperation, UsageRecord, UsageStatus } from './usage-record';

/**
 * The stable JSON form of a usage record, for plugins that forward records (files, queues,
 * warehouses). Field names and value formats are those of the usage API and of `records.csv`:
 * snake_case, instants as ISO 8601 UTC, cost as an exact USD decimal string with 9 decimals.
 * Fields are only ever added within one major version of the plugin API.
 */
export interface SerializedUsageRecord {
  id: string;
  /** When the call started, ISO 8601 UTC with milliseconds. */
  created_at: string;
  task_id: string | null;
  user_id: string | null;
  trace_id: string | null;
  provider: string;
  operation: UsageOperation;
  requested_model: string;
  response_model: string | null;
  status: UsageStatus;
  error_type: string | null;
  input_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  total_tokens: number;
  /** Exact USD, 9 decimals (`"0.000021000"`); null when the model has no known price. */
  cost_usd: string | null;
  unpriced: boolean;
  estimated: boolean;
  price_source: string | null;
  latency_ms: number;
  /** Time to first token of a streamed call, ms. */
  ttft_ms: number | null;
  streamed: boolean;
}

const NANOS = BigInt(NANOS_PER_USD);

/** Integer nano-dollars as an exact USD decimal string: 21000 -> "0.000021000". */
export function formatUsdNanos(nanos: number | bigint): string {
  const n = BigInt(nanos);
  const abs = n < 0n ? -n : n;
  return `${n < 0n ? '-' : ''}${abs / NANOS}.${(abs % NANOS).toString().padStart(9, '0')}`;
}

/** The documented snake_case JSON form of a record (see `SerializedUsageRecord`). */
export function serializeUsageRecord(record: UsageRecord): SerializedUsageRecord {
  return {
    id: record.id,
    created_at: new Date(record.createdAtMs).toISOString(),
    task_id: record.taskId,
    user_id: record.userId,
    trace_id: record.traceId,
    provider: record.provider,
    operation: record.operation,
    requested_model: record.requestedModel,
    response_model: record.responseModel,
    status: record.status,
    error_type: record.errorType,
    input_tokens: record.inputTokens,
    cached_input_tokens: record.cachedInputTokens,
    cache_write_tokens: record.cacheWriteTokens,
    output_tokens: record.outputTokens,
    reasoning_tokens: record.reasoningTokens,
    total_tokens: record.totalTokens,
    cost_usd: record.costNanos === null ? null : formatUsdNanos(record.costNanos),
    unpriced: record.unpriced,
    estimated: record.estimated,
    price_source: record.priceSource,
    latency_ms: record.latencyMs,
    ttft_ms: record.timeToFirstTokenMs,
    streamed: record.streamed,
  };
}
