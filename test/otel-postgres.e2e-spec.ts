/**
 * Database spans on PostgreSQL: TypeORM operations and, beneath them, the pg driver's queries,
 * inside the trace of the HTTP request that made them. Runs when TEST_DATABASE_URL is set.
 * (Tracing is process-wide: started in this file only, before pg and typeorm are loaded.)
 */
import { flushTracing } from '../src/modules/metrics/tracing';
import type { TestApp } from './support/create-app';
import { ancestors, OtlpReceiver, startTracingToReceiver, TracingToReceiver } from './support/otlp-receiver';
import type { ScratchDatabase } from './support/postgres';

const describeIfPostgres = process.env.TEST_DATABASE_URL
  ? describe
  : describe.skip;

describeIfPostgres(`OpenTelemetry database spans (PostgreSQL)${process.env.TEST_DATABASE_URL ? '' : ' [skipped: TEST_DATABASE_URL is not set]'}`, () => {
  let receiver: OtlpReceiver;
  let db: ScratchDatabase;
  let t: TestApp;
  let tracing: TracingToReceiver;

  beforeAll(async () => {
    tracing = await startTracingToReceiver();
    receiver = tracing.receiver;
    const { createScratchPostgres } = await import('./support/postgres');
    const { createTestApp, listenOnLoopback } = await import('./support/create-app');
    db = await createScratchPostgres();
    t = await createTestApp({ env: { DATABASE_URL: db.url } });
    await listenOnLoopback(t.app);
  });

  afterAll(async () => {
    await t?.close();
    await db?.drop();
    await tracing?.stop();
  });

  it('traces TypeORM operations and the pg queries under the HTTP request', async () => {
    const base = (await t.app.getUrl()).replace('[::1]', '127.0.0.1');
    expect((await fetch(`${base}/api/v1/usage/overall?days=7`)).status).toBe(200);
    await flushTracing();
    const server = await receiver.waitFor('the HTTP span', (spans) => spans.find((s) => s.name === 'GET /api/v1/usage/overall'));
    const inTrace = receiver.spans.filter((s) => s.traceId === server.traceId);

    const orm = inTrace.filter((s) => s.scope === '@opentelemetry/instrumentation-typeorm');
    expect(orm.length).toBeGreaterThan(0);
    for (const s of orm) expect(s.attributes['db.system.name']).toBe('postgres');

    const wire = await receiver.waitFor('pg query spans', () => {
      const found = receiver.spans.filter((s) => s.traceId === server.traceId && s.scope === '@opentelemetry/instrumentation-pg' && /llm_usage/i.test(String(s.attributes['db.statement'] ?? s.attributes['db.query.text'] ?? '')));
      return found.length > 0 ? found : undefined;
    });
    for (const q of wire) {
      expect(q.kind).toBe(3); // CLIENT
      expect(q.attributes['db.system'] ?? q.attributes['db.system.name']).toBe('postgresql');
      expect(ancestors(receiver.spans, q).map((s) => s.spanId)).toContain(server.spanId);
      // Statement text only: parameter values (user ids, ...) are not recorded.
      expect(Object.keys(q.attributes).some((k) => k.includes('values') || k.includes('parameters'))).toBe(false);
    }
  });
});
