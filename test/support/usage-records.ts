import { randomUUID } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { UsageRecorder } from '../../src/modules/usage/usage-recorder.service';
import type { UsageRecord } from '../../src/plugins/sdk';

export const DAY_MS = 86_400_000;

/** A usage record with test defaults; override what the test is about. */
/** Records each through the app's real recorder, then waits until every sink has written them. */
export async function recordAll(app: INestApplication, records: readonly UsageRecord[]): Promise<void> {
  const recorder = app.get(UsageRecorder);
  for (const r of records) await recorder.record(r);
  await recorder.flush();
}

export function usageRecord(over: Partial<UsageRecord> = {}): UsageRecord {
  const input = over.inputTokens ?? 100;
  const output = over.outputTokens ?? 50;
  return {
    id: randomUUID(),
    createdAtMs: Date.now(),
    taskId: null,
    userId: null,
    traceId: null,
    provider: 'openai',
    operation: 'chat',
    requestedModel: 'gpt-4',
    responseModel: 'gpt-4-0613',
    inputTokens: input,
    cachedInputTokens: 0,
    cacheWriteTokens: 0,
    outputTokens: output,
    reasoningTokens: 0,
    totalTokens: input + output,
    costNanos: 1_000,
    unpriced: false,
    priceSource: 'test',
    latencyMs: 100,
    timeToFirstTokenMs: null,
    streamed: false,
    status: 'success',
    errorType: null,
    estimated: false,
    ...over,
  };
}

/** Reference aggregation (BigInt money) the API must agree with exactly. */
export function expectedTotals(records: UsageRecord[]) {
  let cost = 0n;
  let latency = 0;
  const t = {
    total_requests: records.length,
    total_tokens: 0,
    input_tokens: 0,
    output_tokens: 0,
    cached_input_tokens: 0,
    cache_write_tokens: 0,
    reasoning_tokens: 0,
    failed_requests: 0,
    unpriced_requests: 0,
    estimated_requests: 0,
  };
  for (const r of records) {
    t.total_tokens += r.totalTokens;
    t.input_tokens += r.inputTokens;
    t.output_tokens += r.outputTokens;
    t.cached_input_tokens += r.cachedInputTokens;
    t.cache_write_tokens += r.cacheWriteTokens;
    t.reasoning_tokens += r.reasoningTokens;
    if (r.status !== 'success') t.failed_requests++;
    if (r.unpriced) t.unpriced_requests++;
    if (r.estimated) t.estimated_requests++;
    cost += BigInt(r.costNanos ?? 0);
    // The API sums latency in whole microseconds (truncated), exactly, on every path.
    latency += Math.trunc(r.latencyMs * 1000);
  }
  return {
    ...t,
    total_cost_usd_exact: usdExact(cost),
    total_cost_usd: Number(usdExact(cost)),
    avg_latency_ms: records.length === 0 ? 0 : Math.round(latency / records.length) / 1000,
  };
}

/** Per-group expectation in the API's breakdown shape. */
export function expectedGroups(records: UsageRecord[], key: (r: UsageRecord) => string) {
  const by = new Map<string, UsageRecord[]>();
  for (const r of records) by.set(key(r), [...(by.get(key(r)) ?? []), r]);
  const out: Record<string, unknown> = {};
  for (const [k, list] of by) {
    const { total_requests, total_tokens, total_cost_usd, total_cost_usd_exact, avg_latency_ms: _avg, ...rest } = expectedTotals(list);
    out[k] = { requests: total_requests, tokens: total_tokens, cost_usd: total_cost_usd, cost_usd_exact: total_cost_usd_exact, ...rest };
  }
  return out;
}

export function usdExact(nanos: bigint): string {
  return `${nanos / 1_000_000_000n}.${(nanos % 1_000_000_000n).toString().padStart(9, '0')}`;
}

/** A seeded PRNG (mulberry32): the same sequence of floats in [0, 1) for the same seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
