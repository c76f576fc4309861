import { nanosToUsdExact } from '../../common/money';
import { RECORD_COLUMNS } from '../../modules/billing/usage-records-csv.service';
import { usageRecord } from '../../../test/support/usage-records';
import { formatUsdNanos, serializeUsageRecord } from './serialize-usage-record';

describe('serializeUsageRecord', () => {
  it('has exactly the fields of records.csv, in its order', () => {
    expect(Object.keys(serializeUsageRecord(usageRecord()))).toEqual([...RECORD_COLUMNS]);
  });

  it('writes snake_case fields, the start as ISO 8601 UTC and the cost as an exact decimal string', () => {
    const r = usageRecord({
      createdAtMs: Date.UTC(2026, 10, 25, 13, 4, 5, 678),
      taskId: 't1',
      userId: 'alice',
      traceId: '0af7651916cd43dd8448eb211c80319c',
      inputTokens: 1200,
      cachedInputTokens: 200,
      cacheWriteTokens: 100,
      outputTokens: 300,
      reasoningTokens: 50,
      totalTokens: 1500,
      costNanos: 1_234_567_891,
      priceSource: 'override:gpt-x',
      latencyMs: 812,
      timeToFirstTokenMs: 95,
      streamed: true,
      estimated: true,
    });
    expect(serializeUsageRecord(r)).toEqual({
      id: r.id,
      created_at: '2026-11-25T13:04:05.678Z',
      task_id: 't1',
      user_id: 'alice',
      trace_id: '0af7651916cd43dd8448eb211c80319c',
      provider: 'openai',
      operation: 'chat',
      requested_model: 'gpt-4',
      response_model: 'gpt-4-0613',
      status: 'success',
      error_type: null,
      input_tokens: 1200,
      cached_input_tokens: 200,
      cache_write_tokens: 100,
      output_tokens: 300,
      reasoning_tokens: 50,
      total_tokens: 1500,
      cost_usd: '1.234567891',
      unpriced: false,
      estimated: true,
      price_source: 'override:gpt-x',
      latency_ms: 812,
      ttft_ms: 95,
      streamed: true,
    });
  });

  it('gives an unpriced call a null cost, never 0, and keeps a failed call\'s error class', () => {
    const s = serializeUsageRecord(usageRecord({ costNanos: null, unpriced: true, priceSource: null, status: 'error', errorType: 'http_429', responseModel: null }));
    expect(s).toMatchObject({ cost_usd: null, unpriced: true, price_source: null, status: 'error', error_type: 'http_429', response_model: null });
  });

  it('formats nano-dollars as the service does everywhere else', () => {
    for (const n of [0, 1, 999_999_999, 1_000_000_000, 21_000, 123_456_789_012, Number.MAX_SAFE_INTEGER]) {
      expect(formatUsdNanos(n)).toBe(nanosToUsdExact(n));
    }
    expect(formatUsdNanos(9_007_199_254_740_993n)).toBe('9007199.254740993');
  });
});
