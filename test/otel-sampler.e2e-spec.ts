/**
 * OTEL_TRACES_SAMPLER is honoured (the service adds its own rule in front of it: no orphan DB
 * spans), and incoming W3C traceparent headers continue the caller's trace.
 * (Tracing is process-wide: started in this file only.)
 */
import { flushTracing } from '../src/modules/metrics/tracing';
import type { TestApp } from './support/create-app';
import { OtlpReceiver, startTracingToReceiver, TracingToReceiver } from './support/otlp-receiver';

describe('OpenTelemetry sampling: OTEL_TRACES_SAMPLER=parentbased_always_off', () => {
  let receiver: OtlpReceiver;
  let t: TestApp;
  let base: string;
  let tracing: TracingToReceiver;

  beforeAll(async () => {
    tracing = await startTracingToReceiver({ OTEL_TRACES_SAMPLER: 'parentbased_always_off' });
    receiver = tracing.receiver;
    const { createTestApp, listenOnLoopback } = await import('./support/create-app');
    t = await createTestApp();
    base = await listenOnLoopback(t.app);
  });

  afterAll(async () => {
    await t?.close();
    await tracing?.stop();
  });

  it('records a request only when the caller sampled its trace, and continues that trace', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    await fetch(`${base}/api/v1/usage/overall?days=1`); // no traceparent: a root, not sampled
    await fetch(`${base}/api/v1/usage/overall?days=2`, { headers: { traceparent: `00-${traceId}-${callerSpan}-00` } }); // caller did not sample
    await fetch(`${base}/api/v1/usage/overall?days=3`, { headers: { traceparent: `00-${traceId}-${callerSpan}-01` } }); // caller sampled
    await flushTracing();
    const server = await receiver.waitFor('the sampled request', (spans) => spans.find((s) => s.kind === 2));
    await new Promise((r) => setTimeout(r, 200));
    await flushTracing();
    const servers = receiver.spans.filter((s) => s.kind === 2);
    expect(servers).toHaveLength(1);
    expect(server.traceId).toBe(traceId);
    expect(server.parentSpanId).toBe(callerSpan);
    expect(String(server.attributes['url.query'] ?? server.attributes['http.target'])).toContain('days=3');
    // Its DB queries are in the trace too.
    expect(receiver.spans.some((s) => s.traceId === traceId && s.scope === '@opentelemetry/instrumentation-typeorm')).toBe(true);
  });
});
