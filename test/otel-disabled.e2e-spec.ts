/** With ENABLE_OPENTELEMETRY and OTLP_USAGE_SINK unset, no OpenTelemetry SDK code is even loaded. */
import { trace } from '@opentelemetry/api';
import { randomUUID } from 'node:crypto';
import { startTracing } from '../src/modules/metrics/tracing';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { createTestApp, TestApp } from './support/create-app';

const loadedOtelPackages = () =>
  [...new Set(Object.keys(require.cache).map((k) => /node_modules\/(@opentelemetry\/[^/]+)\//.exec(k)?.[1]).filter(Boolean))].sort();

describe('OpenTelemetry disabled', () => {
  let t: TestApp;
  beforeAll(async () => {
    // AppModule (imported above) decided on the OTLP usage sink when it was loaded: it must have been off.
    expect(process.env.OTLP_USAGE_SINK ?? '').toMatch(/^(|false|0|no|off)$/);
    delete process.env.ENABLE_OPENTELEMETRY;
    expect(startTracing()).toBe(false);
    t = await createTestApp({ env: { ENABLE_OPENTELEMETRY: 'false' } });
  });
  afterAll(() => t?.close());

  it('loads no SDK, exporter or instrumentation; only the no-op API', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/usage/overall?days=7' })).statusCode).toBe(200);
    const loaded = loadedOtelPackages();
    expect(loaded.length).toBeGreaterThan(0); // sanity: the cache is visible from here (the API is loaded)
    expect(loaded.filter((p) => p !== '@opentelemetry/api')).toEqual([]);
    // Nor nestjs-otel, which the OTLP usage sink is built on (test/otlp-usage-sink.e2e-spec.ts sees it loaded when on).
    expect(Object.keys(require.cache).filter((k) => /node_modules\/nestjs-otel\//.test(k))).toEqual([]);
    expect(t.app.get(UsageRecorder).stats().map((s) => s.sink)).toEqual(['database', 'prometheus']);
    // Spans are non-recording: nothing is kept, nothing is exported.
    const span = trace.getTracer('x').startSpan('noop');
    expect(span.isRecording()).toBe(false);
    span.end();
  });

  it('serves metrics without exemplars', async () => {
    await t.app.get(UsageRecorder).record({
      id: randomUUID(), createdAtMs: Date.now(), taskId: null, userId: null, traceId: null, provider: 'openai', operation: 'chat',
      requestedModel: 'gpt-4o', responseModel: 'gpt-4o', inputTokens: 1, cachedInputTokens: 0, cacheWriteTokens: 0, outputTokens: 1,
      reasoningTokens: 0, totalTokens: 2, costNanos: 100, unpriced: false, priceSource: 'test', latencyMs: 120, timeToFirstTokenMs: null,
      streamed: false, status: 'success', errorType: null, estimated: false,
    });
    await t.app.get(UsageRecorder).flush();
    const body = (await t.app.inject({ method: 'GET', url: '/metrics', headers: { accept: 'application/openmetrics-text; version=1.0.0' } })).body;
    expect(body).toContain('llm_latency_seconds_bucket{le="0.5",model="gpt-4o",provider="openai"} 1');
    expect(body).not.toContain('trace_id');
  });
});
