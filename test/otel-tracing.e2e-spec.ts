/**
 * Traces end to end: the real OpenTelemetry SDK started by startTracing() (as main.ts does),
 * exporting OTLP/HTTP protobuf (the default protocol) to a local receiver, from the real AppModule
 * listening on 127.0.0.1, with LLM calls through the real LlmClient and openai SDK against the
 * local OpenAI-compatible simulator.
 *
 * Tracing is process-wide, so it is started here, in this file only (vitest runs each file in its
 * own process), before anything instrumented (http, @nestjs/core, typeorm) is loaded: everything
 * that loads them is imported dynamically below.
 */
import { trace } from '@opentelemetry/api';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flushTracing, startTracing } from '../src/modules/metrics/tracing';
import type { SimulatorHandle } from '../src/simulator/openai-compatible-server';
import { ancestors, OtlpReceiver, ReceivedSpan, startTracingToReceiver, TracingToReceiver } from './support/otlp-receiver';
import type { TestApp } from './support/create-app';
import type { BuggyRepo } from './support/tasks';

const MODEL = 'acme-large';
// USD per million tokens; reasoning is priced as output.
const PRICES = { input: '2.5', cached_input: '1.25', output: '10' };
// 900 uncached input, 100 cached input, 200 output (50 of them reasoning).
const EXPECTED_COST_NANOS = 900 * 2_500 + 100 * 1_250 + 200 * 10_000; // 4_375_000 = $0.004375

const BUG = 'add(2, 3) returns -1 instead of 5';

const OPENMETRICS_ACCEPT = 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5';

describe('OpenTelemetry traces over OTLP', () => {
  let receiver: OtlpReceiver;
  let simulator: SimulatorHandle;
  let t: TestApp;
  let base: string;
  let dir: string;
  let repo: BuggyRepo;
  let tracing: TracingToReceiver;

  beforeAll(async () => {
    tracing = await startTracingToReceiver({
      OTEL_EXPORTER_OTLP_HEADERS: 'x-test-tenant=asa-e2e',
      OTEL_SERVICE_NAME: undefined,
      OTEL_EXPORTER_OTLP_PROTOCOL: undefined,
    });
    receiver = tracing.receiver;

    const { startOpenAiCompatibleServer } = await import('../src/simulator/openai-compatible-server');
    const { createTestApp, listenOnLoopback } = await import('./support/create-app');
    const { createBuggyRepo } = await import('./support/tasks');
    dir = mkdtempSync(join(tmpdir(), 'asa-otel-'));
    chmodSync(dir, 0o711); // the sandbox's user (uid 65534 when tests run as root) passes through to the workspaces
    repo = createBuggyRepo(dir);
    simulator = await startOpenAiCompatibleServer({
      respond: ({ body }) => ({
        // The bug-fix agent gets the fix; direct calls get anything.
        content: JSON.stringify(body.messages ?? '').includes(BUG) ? `Here is the fix.\n\n\`\`\`diff\n${repo.goodDiff}\`\`\`\n` : 'ok',
        model: `${MODEL}-2026-01-01`,
        usage: { prompt_tokens: 1000, completion_tokens: 200, cached_tokens: 100, reasoning_tokens: 50 },
      }),
    });
    const pricing = join(dir, 'pricing.json');
    writeFileSync(pricing, JSON.stringify({ models: [{ model: MODEL, ...PRICES }] }));
    t = await createTestApp({
      env: {
        OPENAI_BASE_URL: simulator.baseUrl,
        OPENAI_API_KEY: 'sk-test-not-real',
        OPENAI_MAX_RETRIES: '0',
        PRICING_FILE: pricing,
        TASK_POLL_INTERVAL_MS: '50',
        TASK_WORKSPACE_DIR: join(dir, 'workspaces'),
      },
    });
    base = await listenOnLoopback(t.app);
  });

  afterAll(async () => {
    await t?.close();
    await simulator?.close();
    await tracing?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('exports with the service name, over http/protobuf, with the configured OTLP headers', async () => {
    await fetch(`${base}/api/v1/usage/overall?days=7`);
    await flushTracing();
    const span = await receiver.waitFor('any span of the service', (spans) => spans.find((s) => s.resource['service.name'] === 'asa-backend'));
    expect(span.resource['service.version']).toBe('0.1.0');
    expect(receiver.exports[0].contentType).toBe('application/x-protobuf');
    expect(receiver.exports[0].headers['x-test-tenant']).toBe('asa-e2e');
  });

  it('traces an incoming request: the HTTP server span named by its route, the Nest handler and the DB queries under it', async () => {
    const res = await fetch(`${base}/api/v1/usage/overall?days=7`, { headers: { 'x-probe': 'usage-overall' } });
    expect(res.status).toBe(200);
    await flushTracing();
    const server = await receiver.waitFor('the GET /api/v1/usage/overall server span', (spans) =>
      spans.find((s) => s.kind === 2 && s.name === 'GET /api/v1/usage/overall'),
    );
    expect(server.parentSpanId).toBe('');
    expect(server.attributes['http.route']).toBe('/api/v1/usage/overall');
    expect(server.attributes['http.response.status_code'] ?? server.attributes['http.status_code']).toBe(200);
    expect(server.scope).toBe('@opentelemetry/instrumentation-http');

    const inTrace = receiver.spans.filter((s) => s.traceId === server.traceId);
    const nest = inTrace.find((s) => s.scope === '@opentelemetry/instrumentation-nestjs-core' && s.attributes['nestjs.type'] === 'request_context');
    expect(nest, 'Nest request span').toBeDefined();
    expect(nest!.attributes['http.route']).toBe('/api/v1/usage/overall');
    expect(ancestors(receiver.spans, nest!)).toContain(server);

    const db = inTrace.filter((s) => s.scope === '@opentelemetry/instrumentation-typeorm');
    expect(db.length).toBeGreaterThan(0);
    expect(db.some((q) => /llm_usage/i.test(String(q.attributes['db.query.text'])))).toBe(true);
    for (const q of db) {
      expect(q.attributes['db.system.name']).toBe('sqlite');
      expect(String(q.attributes['db.query.text'])).toMatch(/^SELECT /i);
      expect(ancestors(receiver.spans, q).map((s) => s.spanId)).toContain(server.spanId);
    }
  });

  it('does not trace /metrics scrapes or /health probes', async () => {
    await fetch(`${base}/metrics`);
    await fetch(`${base}/health`);
    await fetch(`${base}/api/v1/usage/overall?days=1`);
    await flushTracing();
    await receiver.waitFor('the marker request', (spans) => spans.filter((s) => s.name === 'GET /api/v1/usage/overall').length >= 3);
    const paths = receiver.spans.filter((s) => s.kind === 2).map((s) => String(s.attributes['url.path'] ?? s.attributes['http.target'] ?? ''));
    expect(paths.some((p) => p.startsWith('/metrics'))).toBe(false);
    expect(paths.some((p) => p.startsWith('/health'))).toBe(false);
  });

  it('makes no orphan traces out of background queries (the task queue polls the database every 50 ms here)', async () => {
    await new Promise((r) => setTimeout(r, 500));
    await flushTracing();
    const orphans = receiver.spans.filter((s) => s.parentSpanId === '' && (s.attributes['db.system.name'] !== undefined || s.attributes['db.system'] !== undefined));
    expect(orphans.map((s) => s.name)).toEqual([]);
    // DB spans inside a trace are still there.
    expect(receiver.spans.some((s) => s.scope === '@opentelemetry/instrumentation-typeorm' && s.parentSpanId !== '')).toBe(true);
  });

  describe('an LLM call', () => {
    let llm: ReceivedSpan;
    let parent: ReceivedSpan;

    beforeAll(async () => {
      const { LlmClientFactory } = await import('../src/modules/llm/llm-client.factory');
      const { UsageRecorder } = await import('../src/modules/usage/usage-recorder.service');
      const client = t.app.get(LlmClientFactory).forTask('otel-task-1', { userId: 'otel-user' });
      const tracer = trace.getTracer('otel-e2e');
      await tracer.startActiveSpan('agent step', async (span) => {
        try {
          await client.chat({ model: MODEL, messages: [{ role: 'user', content: 'fix the bug' }], max_tokens: 300 });
        } finally {
          span.end();
        }
      });
      await t.app.get(UsageRecorder).flush();
      await flushTracing();
      llm = await receiver.waitFor('the LLM span', (spans) => spans.find((s) => s.name === `chat ${MODEL}`));
      parent = await receiver.waitFor('its parent', (spans) => spans.find((s) => s.spanId === llm.parentSpanId));
    });

    it('is a CLIENT span named `{operation} {model}` under the span it ran in', () => {
      expect(llm.kind).toBe(3);
      expect(parent.name).toBe('agent step');
      expect(llm.traceId).toBe(parent.traceId);
      expect(llm.scope).toBe('asa-backend.llm');
    });

    it('carries the GenAI semantic convention attributes', () => {
      expect(llm.attributes).toMatchObject({
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai',
        'gen_ai.request.model': MODEL,
        'gen_ai.request.max_tokens': 300,
        'gen_ai.response.model': `${MODEL}-2026-01-01`,
        'gen_ai.usage.input_tokens': 1000,
        'gen_ai.usage.output_tokens': 200,
        'gen_ai.usage.cache_read.input_tokens': 100,
        'gen_ai.usage.reasoning.output_tokens': 50,
        'server.address': '127.0.0.1',
      });
      expect(llm.attributes['gen_ai.response.finish_reasons']).toEqual(['stop']);
    });

    it('carries the exact cost, the task and the user', async () => {
      expect(llm.attributes['asa.cost_nanos']).toBe(EXPECTED_COST_NANOS);
      expect(llm.attributes['asa.cost_usd']).toBe(EXPECTED_COST_NANOS / 1e9);
      expect(llm.attributes['asa.unpriced']).toBe(false);
      expect(llm.attributes['asa.task_id']).toBe('otel-task-1');
      expect(llm.attributes['asa.user_id']).toBe('otel-user');
      // The same figure the usage API reports for the task.
      const usage = (await t.app.inject({ method: 'GET', url: '/api/v1/usage/task/otel-task-1' })).json();
      expect(usage.total_cost_usd).toBe(EXPECTED_COST_NANOS / 1e9);
    });

    it('links metrics to the trace: the latency and cost exemplars carry its trace id', async () => {
      const res = await fetch(`${base}/metrics`, { headers: { accept: OPENMETRICS_ACCEPT } });
      const body = await res.text();
      const latency = body.split('\n').find((l) => l.startsWith('llm_latency_seconds_bucket{') && l.includes(`model="${MODEL}"`) && l.includes(' # {'));
      expect(latency).toContain(`# {trace_id="${llm.traceId}"}`);
      const cost = body.split('\n').find((l) => l.startsWith(`llm_cost_usd_total{model="${MODEL}"}`));
      expect(cost).toContain(`# {trace_id="${llm.traceId}"} ${EXPECTED_COST_NANOS / 1e9}`);
    });
  });
  describe('a bug-fix task', () => {
    let taskId: string;
    let spans: ReceivedSpan[];
    let task: ReceivedSpan;

    beforeAll(async () => {
      const { waitForTask, isFinal } = await import('./support/tasks');
      const res = await fetch(`${base}/api/v1/task/submit`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ repo_url: repo.path, bug_description: BUG, test_command: repo.testCommand, model: MODEL, user_id: 'dora' }),
      });
      expect(res.status).toBe(202);
      taskId = ((await res.json()) as { task_id: string }).task_id;
      expect((await waitForTask(t.app, taskId, isFinal, { timeoutMs: 60_000 })).status).toBe('succeeded');
      await flushTracing();
      task = await receiver.waitFor('the task span', (all) => all.find((s) => s.name === `task ${taskId}`));
      spans = receiver.spans.filter((s) => s.traceId === task.traceId);
    });

    it('is one trace: the task span with its stages (clone, model call, apply, test) as children', () => {
      expect(task.attributes).toMatchObject({ 'asa.task_id': taskId, 'asa.user_id': 'dora', 'asa.task.status': 'succeeded', 'asa.task.attempts': 1 });
      const children = spans.filter((s) => s.parentSpanId === task.spanId);
      const names = children.map((s) => s.name);
      for (const stage of ['task.clone', `chat ${MODEL}`, 'task.apply', 'task.test']) expect(names, stage).toContain(stage);
      // In order: clone, then the model call, then apply, then the test run that passes.
      const start = (name: string) => children.filter((s) => s.name === name).map((s) => s.startNanos).sort()[0];
      expect(start('task.clone') < start(`chat ${MODEL}`)).toBe(true);
      expect(start(`chat ${MODEL}`) < start('task.apply')).toBe(true);
      const lastTest = children.filter((s) => s.name === 'task.test').sort((a, b) => (a.startNanos < b.startNanos ? -1 : 1)).at(-1)!;
      expect(start('task.apply') < lastTest.startNanos).toBe(true);
      for (const child of children) expect(child.endNanos <= task.endNanos, child.name).toBe(true);
    });

    it("the task's LLM call carries the GenAI attributes, the cost and the task", () => {
      const llm = spans.find((s) => s.name === `chat ${MODEL}` && s.parentSpanId === task.spanId)!;
      expect(llm.attributes).toMatchObject({
        'gen_ai.operation.name': 'chat',
        'gen_ai.request.model': MODEL,
        'gen_ai.usage.input_tokens': 1000,
        'gen_ai.usage.output_tokens': 200,
        'asa.cost_nanos': EXPECTED_COST_NANOS,
        'asa.task_id': taskId,
        'asa.user_id': 'dora',
      });
    });

    it('the submit request is traced too, and the task duration exemplar points at the task trace', async () => {
      expect(receiver.spans.some((s) => s.kind === 2 && s.name === 'POST /api/v1/task/submit')).toBe(true);
      const body = await (await fetch(`${base}/metrics`, { headers: { accept: OPENMETRICS_ACCEPT } })).text();
      const exemplars = body.split('\n').filter((l) => l.startsWith('task_duration_seconds_bucket{') && l.includes('status="success"') && l.includes(' # {'));
      expect(exemplars.join('\n')).toContain(`trace_id="${task.traceId}"`);
    });
  });
});
