/**
 * Graceful shutdown flushes the spans, with OTLP over http/json and a custom service name.
 * The batch processor is told to wait a minute, so anything the receiver gets before that came
 * from the flush on application shutdown. (Tracing is process-wide: started in this file only.)
 */
import { trace } from '@opentelemetry/api';
import type { TestApp } from './support/create-app';
import { OtlpReceiver, startTracingToReceiver, TracingToReceiver } from './support/otlp-receiver';

describe('OpenTelemetry on shutdown', () => {
  let receiver: OtlpReceiver;
  let t: TestApp | undefined;
  let tracing: TracingToReceiver;

  beforeAll(async () => {
    tracing = await startTracingToReceiver({
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'asa-backend-canary',
      OTEL_BSP_SCHEDULE_DELAY: '60000',
    });
    receiver = tracing.receiver;
    const { createTestApp, listenOnLoopback } = await import('./support/create-app');
    t = await createTestApp();
    await listenOnLoopback(t.app);
  });

  afterAll(async () => {
    await t?.close();
    await tracing?.stop();
  });

  it('exports the buffered spans when the application closes', async () => {
    const base = (await t!.app.getUrl()).replace('[::1]', '127.0.0.1');
    expect((await fetch(`${base}/api/v1/usage/overall?days=7`)).status).toBe(200);
    trace.getTracer('otel-e2e').startSpan('last words before shutdown').end();
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.spans).toHaveLength(0); // still buffered: the schedule delay is a minute

    await t!.close();
    t = undefined;
    // The flush ran inside close(): no waiting for the batch timer.
    const names = receiver.spans.map((s) => s.name);
    expect(names).toContain('last words before shutdown');
    expect(names).toContain('GET /api/v1/usage/overall');
    expect(receiver.exports.every((e) => e.contentType.startsWith('application/json'))).toBe(true);
    expect(new Set(receiver.spans.map((s) => s.resource['service.name']))).toEqual(new Set(['asa-backend-canary']));
  });
});
