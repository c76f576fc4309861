/**
 * The OTLP usage sink end to end: real LLM calls through LlmClientFactory and the real openai SDK
 * against the simulator, the sink's OpenTelemetry SDK exporting to a local OTLP/HTTP receiver, and
 * the received GenAI metrics and log records compared with the usage API's totals.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import { LlmClientFactory } from '../src/modules/llm/llm-client.factory';
import { LlmUsage } from '../src/modules/usage/entities/llm-usage.entity';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { GEN_AI_DURATION_BUCKETS, GEN_AI_TOKEN_USAGE_BUCKETS } from '../src/plugins/sinks/otlp/otlp-usage.sink';
import { FakeOpenAi } from './fixtures/fake-openai';
import type { CreateAppOptions, TestApp } from './support/create-app';
import { latestPoints, OtlpReceiver, ReceivedMetricPoint, startOtlpReceiver } from './support/otlp-receiver';

// The sink is chosen when AppModule is first loaded (as main.ts does after reading .env), so the
// flag is set before the app is imported, below.
process.env.OTLP_USAGE_SINK = 'true';
let createTestApp: (options?: CreateAppOptions) => Promise<TestApp>;

const USER_HI = [{ role: 'user' as const, content: 'hi' }];

/** `"0.004080000"` → 4080000n: the usage API's exact cost as integer nano-dollars. */
const exactNanos = (usd: string): bigint => {
  const [whole, frac = ''] = usd.split('.');
  return BigInt(whole) * 1_000_000_000n + BigInt(frac.padEnd(9, '0'));
};
/**
 * A USD double from the OTLP counter as nano-dollars. The counter is a double sum of terms
 * nanos/1e9; each term and each addition is off by at most half an ulp, so for sums of a few
 * dollars over a handful of calls the error is below 1e-15 USD, a million times smaller than half
 * a nano-dollar: rounding to the nearest nano recovers the exact integer. Comparing that to the
 * API's exact decimal is therefore an exact comparison, not a tolerance.
 */
const usdToNanos = (usd: number): bigint => BigInt(Math.round(usd * 1e9));

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const pointsWith = (points: ReceivedMetricPoint[], attrs: Record<string, string>) =>
  points.filter((p) => Object.entries(attrs).every(([k, v]) => p.attributes[k] === v));

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('OTLP usage sink', () => {
  let fake: FakeOpenAi;

  beforeAll(async () => {
    ({ createTestApp } = await import('./support/create-app'));
    fake = await FakeOpenAi.start();
  });
  afterAll(async () => {
    await fake?.close();
  });

  const llmEnv = () => ({ OPENAI_BASE_URL: fake.baseUrl, OPENAI_API_KEY: 'test-key', OPENAI_MAX_RETRIES: '0', LLM_PROVIDER: 'openai' });

  /** Four calls: cached input, streamed reasoning, a second model, and a rate-limited failure. */
  async function makeCalls(t: TestApp): Promise<void> {
    const llm = t.app.get(LlmClientFactory);
    fake.enqueue(
      { content: 'Hello!', model: 'gpt-4o-2024-08-06', usage: { prompt_tokens: 2000, completion_tokens: 100, cached_tokens: 1536 } },
      { content: 'Thought about it.', usage: { prompt_tokens: 1234, completion_tokens: 567, reasoning_tokens: 321 } },
      { content: 'Small.', model: 'gpt-4o-mini-2024-07-18', usage: { prompt_tokens: 77, completion_tokens: 13 } },
      { error: { status: 429, message: 'slow down' } },
    );
    const client = llm.forTask('t-otlp', { userId: 'u-otlp' });
    expect((await client.chat({ model: 'gpt-4o', messages: USER_HI })).choices[0].message.content).toBe('Hello!');
    let text = '';
    for await (const chunk of client.chatStream({ model: 'o3-mini', messages: USER_HI })) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toBe('Thought about it.');
    await client.chat({ model: 'gpt-4o-mini', messages: USER_HI });
    await expect(client.chat({ model: 'gpt-4o', messages: USER_HI })).rejects.toThrow();
    fake.expectAllRepliesUsed();
  }

  describe('over http/protobuf, with one log record per call', () => {
    let receiver: OtlpReceiver;
    let t: TestApp;
    let overall: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    let rows: LlmUsage[];

    beforeAll(async () => {
      receiver = await startOtlpReceiver();
      t = await createTestApp({
        env: {
          ...llmEnv(),
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
          OTLP_USAGE_LOGS: 'true',
          // An hour: every export the test sees comes from the sink's own writes, not the timer.
          OTEL_METRIC_EXPORT_INTERVAL: '3600000',
        },
      });
      await makeCalls(t);
      await t.app.get(UsageRecorder).flush();
      const res = await t.app.inject({ method: 'GET', url: '/api/v1/usage/overall?days=1' });
      expect(res.statusCode).toBe(200);
      overall = res.json();
      rows = await t.app.get(DataSource).getRepository(LlmUsage).find();
      expect(rows).toHaveLength(4);
      expect(overall.total_requests).toBe(4);
      await receiver.waitUntil('metrics of 4 calls', (r) => sum(latestPoints(r.metricPoints, 'gen_ai.client.operation.duration').map((p) => p.count!)) === 4);
    });
    afterAll(async () => {
      await t?.close();
      await receiver?.close();
    });

    it('exports gen_ai.client.token.usage whose sums are the usage API token totals, with the recommended buckets', () => {
      const points = latestPoints(receiver.metricPoints, 'gen_ai.client.token.usage');
      expect(points.every((p) => p.kind === 'histogram' && p.temporality === 2 && p.unit === '{token}')).toBe(true);
      expect(points[0].explicitBounds).toEqual(GEN_AI_TOKEN_USAGE_BUCKETS);
      expect(sum(pointsWith(points, { 'gen_ai.token.type': 'input' }).map((p) => p.sum!))).toBe(overall.input_tokens);
      expect(sum(pointsWith(points, { 'gen_ai.token.type': 'output' }).map((p) => p.sum!))).toBe(overall.output_tokens);
      expect(overall.input_tokens).toBe(2000 + 1234 + 77);
      // Per model as well, with the semantic-convention attributes.
      const mini = pointsWith(points, { 'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.token.type': 'input' });
      expect(mini).toHaveLength(1);
      expect(mini[0]).toMatchObject({ count: 1, sum: overall.by_model['gpt-4o-mini'].input_tokens });
      expect(mini[0].attributes).toEqual({
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': 'gpt-4o-mini',
        'gen_ai.response.model': 'gpt-4o-mini-2024-07-18',
        'gen_ai.token.type': 'input',
      });
      expect(mini[0].scope).toBe('nestjs-otel');
      expect(mini[0].resource['service.name']).toBe('asa-backend');
    });

    it('exports gen_ai.client.operation.duration in seconds, one observation per call, error.type on the failure', () => {
      const points = latestPoints(receiver.metricPoints, 'gen_ai.client.operation.duration');
      expect(points.every((p) => p.unit === 's')).toBe(true);
      expect(points[0].explicitBounds).toEqual(GEN_AI_DURATION_BUCKETS);
      expect(sum(points.map((p) => p.count!))).toBe(overall.total_requests);
      const failed = points.filter((p) => p.attributes['error.type'] !== undefined);
      expect(failed).toHaveLength(1);
      expect(failed[0].attributes).toMatchObject({ 'error.type': 'http_429', 'gen_ai.request.model': 'gpt-4o' });
      expect(failed[0].attributes['gen_ai.response.model']).toBeUndefined();
      expect(failed[0].count).toBe(overall.failed_requests);
      // The seconds are the records' latencies.
      expect(sum(points.map((p) => p.sum!))).toBeCloseTo(sum(rows.map((r) => r.latencyMs)) / 1000, 9);
    });

    it('exports asa.llm.cost in USD by model, equal to the usage API cost to the nano-dollar', () => {
      const points = latestPoints(receiver.metricPoints, 'asa.llm.cost');
      expect(points.every((p) => p.kind === 'sum' && p.unit === 'USD')).toBe(true);
      const models = Object.keys(overall.by_model).filter((m) => exactNanos(overall.by_model[m].cost_usd_exact) > 0n);
      expect(models.sort()).toEqual(['gpt-4o', 'gpt-4o-mini', 'o3-mini']);
      for (const model of models) {
        const [p] = pointsWith(points, { 'gen_ai.request.model': model });
        expect(usdToNanos(p.value!)).toBe(exactNanos(overall.by_model[model].cost_usd_exact));
      }
      expect(usdToNanos(sum(points.map((p) => p.value!)))).toBe(exactNanos(overall.total_cost_usd_exact));
    });

    it('exports asa.llm.tokens split by disjoint type as llm_tokens_total is', () => {
      const points = latestPoints(receiver.metricPoints, 'asa.llm.tokens');
      const of = (type: string) => sum(pointsWith(points, { 'asa.token.type': type }).map((p) => p.value!));
      expect(of('cached_input')).toBe(overall.cached_input_tokens);
      expect(of('cached_input')).toBe(1536);
      expect(of('reasoning')).toBe(overall.reasoning_tokens);
      expect(of('reasoning')).toBe(321);
      expect(of('input') + of('cached_input') + of('cache_write')).toBe(overall.input_tokens);
      expect(of('output') + of('reasoning')).toBe(overall.output_tokens);
      expect(sum(points.map((p) => p.value!))).toBe(overall.total_tokens);
    });

    it('sends one log record per call, every field of the record as snake_case attributes', () => {
      expect(receiver.logRecords).toHaveLength(4);
      const byId = new Map(receiver.logRecords.map((l) => [l.attributes.id, l]));
      for (const row of rows) {
        const log = byId.get(row.id)!;
        expect(log).toBeDefined();
        expect(log.eventName).toBe('asa.llm.usage');
        expect(log.scope).toBe('asa-backend.usage');
        expect(log.attributes).toMatchObject({
          created_at_ms: Number(row.createdAtMs),
          task_id: 't-otlp',
          user_id: 'u-otlp',
          provider: 'openai',
          operation: 'chat',
          requested_model: row.requestedModel,
          input_tokens: row.inputTokens,
          cached_input_tokens: row.cachedInputTokens,
          cache_write_tokens: row.cacheWriteTokens,
          output_tokens: row.outputTokens,
          reasoning_tokens: row.reasoningTokens,
          total_tokens: row.totalTokens,
          unpriced: row.unpriced,
          latency_ms: row.latencyMs,
          streamed: row.streamed,
          status: row.status,
          estimated: row.estimated,
        });
        if (row.costNanos !== null) {
          expect(BigInt(log.attributes.cost_nanos as number)).toBe(BigInt(row.costNanos));
          expect(exactNanos(log.attributes.cost_usd_exact as string)).toBe(BigInt(row.costNanos));
        }
        if (row.status === 'error') expect(log.attributes.error_type).toBe('http_429');
        else expect(log.attributes.response_model).toBe(row.responseModel);
      }
      expect(receiver.exports.filter((e) => e.path === '/v1/logs').every((e) => e.contentType.startsWith('application/x-protobuf'))).toBe(true);
    });

    it('loads nestjs-otel and the metrics and logs SDKs (what test/otel-disabled.e2e-spec.ts finds absent when off)', () => {
      const loaded = new Set(Object.keys(require.cache).map((k) => /node_modules\/((@opentelemetry\/)?[^/@]+)\//.exec(k)?.[1]));
      for (const p of ['nestjs-otel', '@opentelemetry/sdk-metrics', '@opentelemetry/sdk-logs', '@opentelemetry/exporter-metrics-otlp-proto']) {
        expect(loaded.has(p), p).toBe(true);
      }
    });

    it('counts the records as written, with no write errors', () => {
      const otlp = t.app.get(UsageRecorder).stats().find((s) => s.sink === 'otlp');
      expect(otlp).toMatchObject({ written: 4, failedWrites: 0, dropped: 0 });
    });
  });

  describe('over http/json, logs off', () => {
    let receiver: OtlpReceiver;
    let t: TestApp;

    beforeAll(async () => {
      receiver = await startOtlpReceiver();
      t = await createTestApp({
        env: {
          ...llmEnv(),
          OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${receiver.url}/v1/metrics`,
          OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json',
          OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'x-collector-key=k123',
          OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=otlp-test',
          OTLP_USAGE_LOGS: undefined,
        },
      });
    });
    afterAll(async () => {
      await t?.close();
      await receiver?.close();
    });

    it('exports the metrics in OTLP/JSON with the configured headers and sends no log record', async () => {
      await makeCalls(t);
      await t.app.get(UsageRecorder).flush();
      const overall = (await t.app.inject({ method: 'GET', url: '/api/v1/usage/overall?days=1' })).json();
      const points = await receiver.waitUntil('token usage of 3 answered calls', (r) => {
        const p = latestPoints(r.metricPoints, 'gen_ai.client.token.usage');
        return sum(pointsWith(p, { 'gen_ai.token.type': 'input' }).map((x) => x.count!)) === 3 && p;
      });
      expect(sum(pointsWith(points, { 'gen_ai.token.type': 'output' }).map((p) => p.sum!))).toBe(overall.output_tokens);
      expect(points[0].resource).toMatchObject({ 'service.name': 'asa-backend', 'deployment.environment.name': 'otlp-test' });
      const metricExports = receiver.exports.filter((e) => e.path === '/v1/metrics');
      expect(metricExports.length).toBeGreaterThan(0);
      expect(metricExports.every((e) => e.contentType.startsWith('application/json') && e.headers['x-collector-key'] === 'k123')).toBe(true);
      expect(receiver.logRecords).toHaveLength(0);
      expect(receiver.exports.filter((e) => e.path === '/v1/logs')).toHaveLength(0);
    });
  });

  describe('with an unreachable collector', () => {
    let t: TestApp;

    beforeAll(async () => {
      t = await createTestApp({
        env: {
          ...llmEnv(),
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await closedPort()}`,
          OTEL_EXPORTER_OTLP_TIMEOUT: '1000',
          OTLP_USAGE_LOGS: 'true',
        },
      });
    });
    afterAll(() => t?.close());

    it('counts the failed exports as the sink write errors; the calls and the other sinks are unaffected', async () => {
      await makeCalls(t); // would throw if a call were affected
      await t.app.get(UsageRecorder).flush();
      const stats = t.app.get(UsageRecorder).stats();
      const otlp = stats.find((s) => s.sink === 'otlp')!;
      expect(otlp.failedWrites).toBeGreaterThanOrEqual(1);
      expect(otlp.written).toBe(0);
      expect(stats.find((s) => s.sink === 'database')).toMatchObject({ written: 4, failedWrites: 0 });
      const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
      const line = metrics.split('\n').find((l) => l.startsWith('usage_sink_write_errors_total{sink="otlp"}'));
      expect(Number(line?.split(' ')[1])).toBe(otlp.failedWrites);
      const overall = (await t.app.inject({ method: 'GET', url: '/api/v1/usage/overall?days=1' })).json();
      expect(overall.total_requests).toBe(4);
    });
  });

  it('exports what is still queued at shutdown, and the final totals, before the app closes', async () => {
    const receiver = await startOtlpReceiver();
    try {
      // An hour between exports and batches: nothing leaves before the shutdown.
      const t = await createTestApp({ env: { ...llmEnv(), OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_METRIC_EXPORT_INTERVAL: '3600000' } });
      fake.enqueue({ content: 'Bye.', usage: { prompt_tokens: 4321, completion_tokens: 12 } });
      await t.app.get(LlmClientFactory).forUser('u-shutdown').chat({ model: 'gpt-4o', messages: USER_HI });
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.metricPoints.filter((p) => p.name === 'gen_ai.client.token.usage')).toHaveLength(0);
      await t.close();
      const input = pointsWith(latestPoints(receiver.metricPoints, 'gen_ai.client.token.usage'), { 'gen_ai.token.type': 'input' });
      expect(input.map((p) => p.sum)).toEqual([4321]);
    } finally {
      await receiver.close();
    }
  });
});
