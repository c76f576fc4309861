import type { LogAttributes } from '@opentelemetry/api-logs';
import { nanosToUsdExact } from '../../../common/money';
import { NANOS_PER_USD, type UsageRecord } from '../../sdk';

/**
 * The attribute name of every usage record field: snake_case, as the usage API spells them. A
 * Record over every key, so a field added to UsageRecord does not compile until it is named here.
 */
export const USAGE_LOG_ATTRIBUTE: Record<keyof UsageRecord, string> = {
  id: 'id',
  createdAtMs: 'created_at_ms',
  taskId: 'task_id',
  userId: 'user_id',
  traceId: 'trace_id',
  provider: 'provider',
  operation: 'operation',
  requestedModel: 'requested_model',
  responseModel: 'response_model',
  inputTokens: 'input_tokens',
  cachedInputTokens: 'cached_input_tokens',
  cacheWriteTokens: 'cache_write_tokens',
  outputTokens: 'output_tokens',
  reasoningTokens: 'reasoning_tokens',
  totalTokens: 'total_tokens',
  costNanos: 'cost_nanos',
  unpriced: 'unpriced',
  priceSource: 'price_source',
  latencyMs: 'latency_ms',
  timeToFirstTokenMs: 'time_to_first_token_ms',
  streamed: 'streamed',
  status: 'status',
  errorType: 'error_type',
  estimated: 'estimated',
  tags: 'tags',
};

/**
 * Every field of a usage record as log attributes, plus `cost_usd` (the nano-dollars as USD) and
 * `cost_usd_exact` (exact decimal string, as the usage API gives it). Null fields are left out
 * (OTLP attributes have no null); `cost_nanos` is the exact integer.
 */
export function usageLogAttributes(r: UsageRecord): LogAttributes {
  const out: LogAttributes = {};
  for (const [field, name] of Object.entries(USAGE_LOG_ATTRIBUTE) as [keyof UsageRecord, string][]) {
    const value = r[field];
    if (value !== null && value !== undefined) out[name] = value;
  }
  if (r.costNanos !== null) {
    out.cost_usd = r.costNanos / NANOS_PER_USD;
    out.cost_usd_exact = nanosToUsdExact(r.costNanos);
  }
  return out;
}

