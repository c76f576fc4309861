/**
 * The operation a gateway call is recorded under, followed through every place it shows: the
 * usage record (and the usage API), the LLM span, the OTLP usage sink's metrics and log records,
 * and Prometheus. Real openai SDK through the gateway over a socket, a local fake upstream, the
 * service's OpenTelemetry SDK and the OTLP sink exporting to a local OTLP/HTTP receiver.
 *
 * Tracing is process-wide and the sink is chosen when AppModule is first loaded, so both are set
 * up before anything instrumented is imported (dynamically, below).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type OpenAI from 'openai';
import { flushTracing } from '../src/modules/metrics/tracing';
import type { FakeOpenAi } from './fixtures/fake-openai';
import type { TestApp } from './support/create-app';
import { latestPoints, OtlpReceiver, startTracingToReceiver, TracingToReceiver } from './support/otlp-receiver';

const KEY = 'asa_ops_gateway_test_key';
const MODEL = 'gpt-4o-mini';

describe('gateway operations: record, span, OTLP sink and Prometheus agree', () => {
  let tracing: TracingToReceiver;
  let receiver: OtlpReceiver;
  let fake: FakeOpenAi;
  let t: TestApp;
  let dir: string;
  let client: OpenAI;
  const ids: Record<'chat' | 'responses' | 'responsesStreamed' | 'embeddings', string> = { chat: '', responses: '', responsesStreamed: '', embeddings: '' };

  beforeAll(async () => {
    process.env.OTLP_USAGE_SINK = 'true';
    tracing = await startTracingToReceiver({ OTLP_USAGE_LOGS: 'true', OTEL_METRIC_EXPORT_INTERVAL: '3600000' });
    receiver = tracing.receiver;
    const { FakeOpenAi } = await import('./fixtures/fake-openai');
    const { createTestApp, listenOnLoopback } = await import('./support/create-app');
    const { writeApiKeysFile } = await import('./support/api-keys');
    const { default: OpenAIClient } = await import('openai');
    fake = await FakeOpenAi.start();
    dir = mkdtempSync(join(tmpdir(), 'asa-gateway-ops-'));
    t = await createTestApp({
      env: {
        OPENAI_BASE_URL: fake.baseUrl,
        OPENAI_API_KEY: 'sk-provider-key',
        OPENAI_MAX_RETRIES: '0',
        API_KEYS_FILE: writeApiKeysFile(dir, [{ name: 'ops', key: KEY, userId: 'ops-user' }]),
      },
    });
    client = new OpenAIClient({ apiKey: KEY, baseURL: `${await listenOnLoopback(t.app)}/v1`, maxRetries: 0 });

    fake.enqueue(
      { content: 'chat answer', usage: { prompt_tokens: 10, completion_tokens: 2 } },
      { content: 'responses answer', usage: { prompt_tokens: 11, completion_tokens: 2 } },
      { content: 'streamed responses answer', usage: { prompt_tokens: 12, completion_tokens: 3 } },
      { usage: { prompt_tokens: 4, completion_tokens: 0 } },
    );
    const chat = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    ids.chat = chat.response.headers.get('x-asa-request-id')!;
    const plain = await client.responses.create({ model: MODEL, input: 'hi', max_output_tokens: 64 }).withResponse();
    ids.responses = plain.response.headers.get('x-asa-request-id')!;
    const streamed = await client.responses.create({ model: MODEL, input: 'hi', stream: true }).withResponse();
    for await (const event of streamed.data) void event;
    ids.responsesStreamed = streamed.response.headers.get('x-asa-request-id')!;
    const embedding = await client.embeddings.create({ model: 'text-embedding-3-small', input: 'hi' }).withResponse();
    ids.embeddings = embedding.response.headers.get('x-asa-request-id')!;

    const { UsageRecorder } = await import('../src/modules/usage/usage-recorder.service');
    await t.app.get(UsageRecorder).flush();
    await flushTracing();
  });
  afterAll(async () => {
    await t?.close();
    await fake?.close();
    await tracing?.stop();
    delete process.env.OTLP_USAGE_SINK;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('records POST /v1/responses as operation "responses" (chat and embeddings keep theirs), in the usage API too', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/usage/records?limit=10', headers: { authorization: `Bearer ${KEY}` } });
    expect(res.statusCode, res.body).toBe(200);
    const byId = new Map((res.json().records as { id: string; operation: string; streamed: boolean }[]).map((r) => [r.id, r]));
    expect(byId.get(ids.chat)).toMatchObject({ operation: 'chat' });
    expect(byId.get(ids.responses)).toMatchObject({ operation: 'responses', streamed: false });
    expect(byId.get(ids.responsesStreamed)).toMatchObject({ operation: 'responses', streamed: true });
    expect(byId.get(ids.embeddings)).toMatchObject({ operation: 'embeddings' });
  });

  it('spans follow the GenAI conventions: a Responses API call is gen_ai.operation.name "chat", told apart by openai.api.type', async () => {
    const span = (id: string) => receiver.waitFor(`the span of ${id}`, (spans) => spans.find((s) => s.attributes['asa.usage_record_id'] === id));
    const responses = await span(ids.responses);
    expect(responses.name).toBe(`chat ${MODEL}`);
    expect(responses.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'openai.api.type': 'responses',
      'gen_ai.request.stream': false,
      'gen_ai.request.max_tokens': 64,
      'gen_ai.usage.input_tokens': 11,
    });
    expect((await span(ids.responsesStreamed)).attributes).toMatchObject({ 'gen_ai.operation.name': 'chat', 'openai.api.type': 'responses', 'gen_ai.request.stream': true });
    const chat = await span(ids.chat);
    expect(chat.name).toBe(`chat ${MODEL}`);
    expect(chat.attributes).toMatchObject({ 'gen_ai.operation.name': 'chat', 'openai.api.type': 'chat_completions' });
    const embeddings = await span(ids.embeddings);
    expect(embeddings.name).toBe('embeddings text-embedding-3-small');
    expect(embeddings.attributes['gen_ai.operation.name']).toBe('embeddings');
    expect(embeddings.attributes['openai.api.type']).toBeUndefined();
  });

  it('the OTLP sink uses the same gen_ai.operation.name in its metrics, and its log records carry the record\'s operation', async () => {
    await receiver.waitUntil('metrics of 4 calls', (r) => latestPoints(r.metricPoints, 'gen_ai.client.operation.duration').reduce((n, p) => n + p.count!, 0) === 4);
    const durations = latestPoints(receiver.metricPoints, 'gen_ai.client.operation.duration');
    const count = (op: string) => durations.filter((p) => p.attributes['gen_ai.operation.name'] === op).reduce((n, p) => n + p.count!, 0);
    expect(count('chat')).toBe(3); // the chat call and both Responses API calls
    expect(count('embeddings')).toBe(1);

    const logs = await receiver.waitUntil('the log records of 4 calls', (r) => (r.logRecords.length >= 4 ? r.logRecords : null));
    const log = (id: string) => logs.find((l) => l.attributes.id === id)!;
    expect(log(ids.responses).attributes.operation).toBe('responses');
    expect(log(ids.responses).body).toBe(`responses ${MODEL} success`);
    expect(log(ids.chat).attributes.operation).toBe('chat');
  });

  it('Prometheus counts the calls under the metric names it always had (they have no operation label)', async () => {
    const body = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    const line = body.split('\n').find((l) => l.startsWith('llm_requests_total{') && l.includes(`model="${MODEL}"`) && l.includes('status="success"'));
    expect(Number(line?.split(' ').pop())).toBe(3);
    expect(body).not.toMatch(/operation="/);
  });
});
