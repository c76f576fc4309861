/**
 * The seed's promise, on a real Prometheus: Debian's `prometheus` binary scrapes the running
 * service (AppModule listening on 127.0.0.1) every second while real LLM calls go through the
 * LlmClient and the openai SDK to the local simulator, and real tasks run through the task queue.
 * Then every PromQL query of the quickstart, every panel of the provisioned Grafana dashboard and
 * the alert rules run through Prometheus' HTTP API, with hand-computed expected values.
 *
 * Tracing is on in this file (exported to a local OTLP receiver), so the usage records carry trace
 * ids and the check includes exemplars stored by Prometheus (--enable-feature=exemplar-storage).
 */
import { trace } from '@opentelemetry/api';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { flushTracing } from '../src/modules/metrics/tracing';
import type { SimulatorHandle } from '../src/simulator/openai-compatible-server';
import type { TestApp } from './support/create-app';
import { OtlpReceiver, startTracingToReceiver, TracingToReceiver } from './support/otlp-receiver';
import { PrometheusHandle, PromSample, scrapeConfig, startPrometheus } from './support/prometheus-server';

const ROOT = resolve(__dirname, '..');
const RULES_FILE = join(ROOT, 'config/prometheus/rules/asa-llm.rules.yml');
const DASHBOARD_FILE = join(ROOT, 'config/grafana/dashboards/asa-llm-overview.json');

// Prices (USD per million tokens) and the simulator's answers per model.
const LARGE = 'acme-large'; // 1000 prompt (100 cached) + 200 completion (50 reasoning), answers after 300 ms
const SMALL = 'acme-small'; // 400 prompt + 100 completion, answers after 600 ms
const UNPRICED = 'mystery-model'; // 10 + 5, no price anywhere, 600 ms
const LARGE_COST_NANOS = 900 * 2_500 + 100 * 1_250 + 200 * 10_000; // 4_375_000
const SMALL_COST_NANOS = 400 * 150 + 100 * 600; // 120_000

/** Calls made per phase: phase 1 creates the series, phase 2 is what rates see. */
const PHASE = {
  1: { large: 1, small: 1, smallStreamed: 1, unpriced: 1, smallErrors: 0, tasksOk: 0, tasksFailed: 0 },
  2: { large: 3, small: 2, smallStreamed: 1, unpriced: 1, smallErrors: 1, tasksOk: 2, tasksFailed: 1 },
} as const;
const sumOf = (k: keyof (typeof PHASE)[1]) => PHASE[1][k] + PHASE[2][k];
// Every task makes one acme-small call (the failing one: one attempt).
const smallCalls = (p: 1 | 2) => PHASE[p].small + PHASE[p].smallStreamed + PHASE[p].tasksOk + PHASE[p].tasksFailed;
const TOTAL_LARGE = sumOf('large');
const TOTAL_SMALL_OK = smallCalls(1) + smallCalls(2);
const EXPECTED_COST_USD = (TOTAL_LARGE * LARGE_COST_NANOS + TOTAL_SMALL_OK * SMALL_COST_NANOS) / 1e9;

describe('Prometheus scraping the service (real prometheus binary)', () => {
  let receiver: OtlpReceiver;
  let simulator: SimulatorHandle;
  let t: TestApp;
  let prom: PrometheusHandle;
  let dir: string;
  /** Time of the last scrape once everything is in: queries are evaluated there. */
  let at: number;
  let tracing: TracingToReceiver;

  const value = (samples: PromSample[], match: Record<string, string> = {}) => {
    const hits = samples.filter((s) => Object.entries(match).every(([k, v]) => s.metric[k] === v));
    expect(hits, `one sample matching ${JSON.stringify(match)} in ${JSON.stringify(samples)}`).toHaveLength(1);
    return Number(hits[0].value[1]);
  };
  const scrapes = async () => Number((await prom.query('count_over_time(up{job="asa-backend"}[10m])'))[0]?.value[1] ?? 0);
  const waitForScrapes = async (n: number) => {
    const target = (await scrapes()) + n;
    const deadline = Date.now() + 30_000;
    while ((await scrapes()) < target) {
      if (Date.now() > deadline) throw new Error(`Prometheus did not scrape ${n} more times:\n${prom.log()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  beforeAll(async () => {
    tracing = await startTracingToReceiver({ OTEL_BSP_SCHEDULE_DELAY: '100' });
    receiver = tracing.receiver;

    const { startOpenAiCompatibleServer } = await import('../src/simulator/openai-compatible-server');
    const { createTestApp, listenOnLoopback } = await import('./support/create-app');
    const { ScriptedAgent } = await import('./support/tasks');
    const { TASK_AGENTS } = await import('../src/plugins/sdk');

    simulator = await startOpenAiCompatibleServer({
      respond: ({ body }) => {
        const text = JSON.stringify(body.messages ?? '');
        if (text.includes('please fail')) return { error: { status: 500, message: 'simulated outage' }, delayMs: 600 };
        if (body.model === LARGE) {
          return { content: 'patch', delayMs: 300, usage: { prompt_tokens: 1000, completion_tokens: 200, cached_tokens: 100, reasoning_tokens: 50 } };
        }
        if (body.model === SMALL) return { content: 'a small patch', delayMs: 600, usage: { prompt_tokens: 400, completion_tokens: 100 } };
        return { content: 'who knows', delayMs: 600, usage: { prompt_tokens: 10, completion_tokens: 5 } };
      },
    });
    dir = mkdtempSync(join(tmpdir(), 'asa-prom-'));
    const pricing = join(dir, 'pricing.json');
    writeFileSync(
      pricing,
      JSON.stringify({
        models: [
          { model: LARGE, input: '2.5', cached_input: '1.25', output: '10' },
          { model: SMALL, input: '0.15', output: '0.6' },
        ],
      }),
    );
    t = await createTestApp({
      env: {
        OPENAI_BASE_URL: simulator.baseUrl,
        OPENAI_API_KEY: 'sk-test-not-real',
        OPENAI_MAX_RETRIES: '0',
        PRICING_FILE: pricing,
        TASK_POLL_INTERVAL_MS: '50',
        TASK_SHUTDOWN_GRACE_MS: '0',
      },
      override: (b) => b.overrideProvider(TASK_AGENTS).useValue([new ScriptedAgent()]),
    });
    const { host } = new URL(await listenOnLoopback(t.app));
    prom = await startPrometheus(
      scrapeConfig({ target: host, ruleFiles: [RULES_FILE] }),
      ['--enable-feature=exemplar-storage'],
    );
    await waitForScrapes(2);

    const { LlmClientFactory } = await import('../src/modules/llm/llm-client.factory');
    const { UsageRecorder } = await import('../src/modules/usage/usage-recorder.service');
    const { waitForTask, isFinal } = await import('./support/tasks');
    const llm = t.app.get(LlmClientFactory).forTask('prom-direct', { userId: 'carol' });
    const tracer = trace.getTracer('prometheus-e2e');
    const ask = (model: string, content = 'fix it') =>
      tracer.startActiveSpan(`ask ${model}`, async (span) => {
        try {
          return await llm.chat({ model, messages: [{ role: 'user', content }] });
        } finally {
          span.end();
        }
      });
    const stream = async (model: string) => {
      for await (const chunk of llm.chatStream({ model, messages: [{ role: 'user', content: 'stream it' }] })) void chunk;
    };
    const submit = async (bug: string) => {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/task/submit',
        payload: { repo_url: 'https://github.com/example/repo', bug_description: bug, test_command: 'true', model: SMALL, max_attempts: 1 },
      });
      expect(res.statusCode).toBe(202);
      return res.json().task_id as string;
    };
    const phase = async (p: 1 | 2) => {
      const n = PHASE[p];
      for (let i = 0; i < n.large; i++) await ask(LARGE);
      for (let i = 0; i < n.small; i++) await ask(SMALL);
      for (let i = 0; i < n.smallStreamed; i++) await stream(SMALL);
      for (let i = 0; i < n.unpriced; i++) await ask(UNPRICED);
      for (let i = 0; i < n.smallErrors; i++) await expect(ask(SMALL, 'please fail')).rejects.toThrow();
      const tasks = [
        ...Array.from({ length: n.tasksOk }, () => submit('llm-succeed')),
        ...Array.from({ length: n.tasksFailed }, () => submit('llm-fail')),
      ];
      for (const id of await Promise.all(tasks)) await waitForTask(t.app, id, isFinal);
      await t.app.get(UsageRecorder).flush();
    };

    await phase(1);
    await waitForScrapes(3);
    await phase(2);
    await waitForScrapes(3);
    await flushTracing();
    at = Number((await prom.query('timestamp(up{job="asa-backend"})'))[0].value[1]);
  });

  afterAll(async () => {
    await prom?.stop();
    await t?.close();
    await simulator?.close();
    await tracing?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('scrapes /metrics as OpenMetrics, without errors', async () => {
    const targets = await prom.api<{ activeTargets: { health: string; lastError: string; scrapeUrl: string }[] }>('targets');
    expect(targets.activeTargets).toHaveLength(1);
    expect(targets.activeTargets[0]).toMatchObject({ health: 'up', lastError: '' });
    expect(value(await prom.query('up{job="asa-backend"}', at))).toBe(1);
    // Default process metrics are there too.
    expect(value(await prom.query('process_resident_memory_bytes{job="asa-backend"}', at))).toBeGreaterThan(0);
  });

  it('seed: sum(llm_cost_usd_total) is the exact total cost', async () => {
    const total = value(await prom.query('sum(llm_cost_usd_total)', at));
    expect(total).toBeCloseTo(EXPECTED_COST_USD, 12);
    // Per model, and the unpriced model is not priced at 0 but counted apart.
    const byModel = await prom.query('sum by (model) (llm_cost_usd_total)', at);
    expect(value(byModel, { model: LARGE })).toBeCloseTo((TOTAL_LARGE * LARGE_COST_NANOS) / 1e9, 12);
    expect(value(byModel, { model: SMALL })).toBeCloseTo((TOTAL_SMALL_OK * SMALL_COST_NANOS) / 1e9, 12);
    expect(byModel.find((s) => s.metric.model === UNPRICED)).toBeUndefined();
    expect(value(await prom.query('sum(llm_unpriced_requests_total)', at))).toBe(sumOf('unpriced'));
  });

  it('seed: rate(llm_requests_total[5m]) per model and status', async () => {
    const rates = await prom.query('rate(llm_requests_total[5m])', at);
    expect(rates).toHaveLength(4); // large ok, small ok, small error, unpriced ok
    // Prometheus' rate is the increase between the first and last raw sample in the window,
    // divided by 300 s, after extrapolating the first sample at most half a scrape interval towards
    // the window start (not at the end: `at` is the last scrape). Which phase-1 calls fall after the
    // first sample depends on scrape timing, so the expected increase is read from the raw samples,
    // and the last sample must be the exact number of calls made.
    const expectRate = async (match: Record<string, string>, phase2Calls: number, allCalls: number) => {
      const selector = Object.entries(match).map(([k, v]) => `${k}="${v}"`).join(',');
      const raw = await prom.api<{ result: { values: [number, string][] }[] }>('query', {
        query: `llm_requests_total{${selector}}[5m]`,
        time: String(at),
      });
      expect(raw.result).toHaveLength(1);
      const values = raw.result[0].values.map(([, v]) => Number(v));
      const [first, last] = [values[0], values[values.length - 1]];
      expect(last).toBe(allCalls);
      expect(last - first).toBeGreaterThanOrEqual(phase2Calls);
      const slack = 1 + 1 / (2 * (values.length - 1)) + 1e-9;
      const r = value(rates, match);
      expect(r).toBeGreaterThanOrEqual((last - first) / 300 - 1e-12);
      expect(r).toBeLessThanOrEqual(((last - first) / 300) * slack);
    };
    await expectRate({ model: LARGE, provider: 'openai', status: 'success' }, PHASE[2].large, TOTAL_LARGE);
    await expectRate({ model: SMALL, provider: 'openai', status: 'success' }, smallCalls(2), TOTAL_SMALL_OK);
    await expectRate({ model: UNPRICED, provider: 'openai', status: 'success' }, PHASE[2].unpriced, sumOf('unpriced'));
    // The error series is born in phase 2: Prometheus sees it start at 1 and counts no increase yet.
    expect(value(rates, { model: SMALL, status: 'error' })).toBe(0);
    expect(value(await prom.query(`llm_requests_total{model="${SMALL}",status="error"}`, at))).toBe(sumOf('smallErrors'));
  });

  it('seed: histogram_quantile(0.95, rate(llm_latency_seconds_bucket[5m])) per model', async () => {
    const p95 = await prom.query('histogram_quantile(0.95, rate(llm_latency_seconds_bucket[5m]))', at);
    // Every acme-large call took 0.3 s (+ overhead): bucket (0.1, 0.5], interpolated at 95%.
    expect(value(p95, { model: LARGE, provider: 'openai' })).toBeCloseTo(0.1 + 0.4 * 0.95, 9);
    // acme-small calls took 0.6 s: bucket (0.5, 1].
    expect(value(p95, { model: SMALL, provider: 'openai' })).toBeCloseTo(0.5 + 0.5 * 0.95, 9);
  });

  it('seed: rate(task_success_total{status="success"}[5m]) counts the succeeded tasks', async () => {
    // The series exists at 0 from the first scrape, so Prometheus does not extrapolate: exact.
    const r = value(await prom.query('rate(task_success_total{status="success"}[5m])', at));
    expect(r).toBeCloseTo(PHASE[2].tasksOk / 300, 12);
    const byStatus = await prom.query('task_success_total', at);
    expect(value(byStatus, { status: 'success' })).toBe(PHASE[2].tasksOk);
    expect(value(byStatus, { status: 'failure' })).toBe(PHASE[2].tasksFailed);
    expect(value(byStatus, { status: 'cancelled' })).toBe(0);
    expect(value(await prom.query('sum(task_duration_seconds_count)', at))).toBe(PHASE[2].tasksOk + PHASE[2].tasksFailed);
  });

  it('seed: sum(rate(llm_cost_usd_total[1h])) is the cost of phase 2 per second', async () => {
    const r = value(await prom.query('sum(rate(llm_cost_usd_total[1h]))', at));
    const phase2 = (PHASE[2].large * LARGE_COST_NANOS + smallCalls(2) * SMALL_COST_NANOS) / 1e9;
    expect(r).toBeGreaterThanOrEqual(phase2 / 3600 - 1e-15);
    expect(r).toBeLessThanOrEqual((phase2 / 3600) * 1.5);
  });

  it('seed: sum by (model) (llm_tokens_total) is every token, by model', async () => {
    const tokens = await prom.query('sum by (model) (llm_tokens_total)', at);
    expect(value(tokens, { model: LARGE })).toBe(TOTAL_LARGE * 1200);
    expect(value(tokens, { model: SMALL })).toBe(TOTAL_SMALL_OK * 500);
    expect(value(tokens, { model: UNPRICED })).toBe(sumOf('unpriced') * 15);
    const byType = await prom.query(`sum by (type) (llm_tokens_total{model="${LARGE}"})`, at);
    expect(Object.fromEntries(byType.map((s) => [s.metric.type, Number(s.value[1])]))).toEqual({
      input: TOTAL_LARGE * 900,
      cached_input: TOTAL_LARGE * 100,
      output: TOTAL_LARGE * 150,
      reasoning: TOTAL_LARGE * 50,
    });
  });

  it('time to first token of streamed calls, and the usage pipeline per sink', async () => {
    expect(value(await prom.query(`llm_time_to_first_token_seconds_count{model="${SMALL}"}`, at))).toBe(sumOf('smallStreamed'));
    expect(value(await prom.query(`llm_time_to_first_token_seconds_bucket{model="${SMALL}",le="0.5"}`, at))).toBe(0);
    expect(value(await prom.query(`llm_time_to_first_token_seconds_bucket{model="${SMALL}",le="1"}`, at))).toBe(sumOf('smallStreamed'));
    const calls = TOTAL_LARGE + TOTAL_SMALL_OK + sumOf('unpriced') + sumOf('smallErrors');
    const written = await prom.query('usage_sink_written_records_total', at);
    expect(value(written, { sink: 'database' })).toBe(calls);
    expect(value(written, { sink: 'prometheus' })).toBe(calls);
    expect(value(await prom.query('sum(usage_sink_dropped_records_total)', at))).toBe(0);
    expect(value(await prom.query('sum(usage_sink_queue_depth)', at))).toBe(0);
  });

  it('stores exemplars that link latency and cost to the traces of the calls', async () => {
    type ExemplarSeries = { seriesLabels: Record<string, string>; exemplars: { labels: Record<string, string>; value: string }[] };
    const exemplars = await prom.api<ExemplarSeries[]>('query_exemplars', {
      query: `llm_latency_seconds_bucket{model="${LARGE}"}`,
      start: String(at - 300),
      end: String(at + 1),
    });
    const traceIds = exemplars.flatMap((s) => s.exemplars.map((e) => e.labels.trace_id));
    expect(traceIds.length).toBeGreaterThan(0);
    // Each one is the trace of an acme-large call: the LLM span is in that trace.
    await flushTracing();
    for (const id of new Set(traceIds)) {
      await receiver.waitFor(`the LLM span of trace ${id}`, (spans) => spans.find((s) => s.traceId === id && s.name === `chat ${LARGE}`));
    }
    const costExemplars = await prom.api<ExemplarSeries[]>('query_exemplars', {
      query: `llm_cost_usd_total{model="${LARGE}"}`,
      start: String(at - 300),
      end: String(at + 1),
    });
    const costs = costExemplars.flatMap((s) => s.exemplars);
    expect(costs.length).toBeGreaterThan(0);
    expect(Number(costs[costs.length - 1].value)).toBeCloseTo(LARGE_COST_NANOS / 1e9, 12);
  });

  it('every panel of the provisioned Grafana dashboard is valid PromQL with data', async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    const empty: string[] = [];
    for (const panel of dashboard.panels) {
      for (const target of panel.targets) {
        const result = await prom.query(target.expr, at); // throws on a parse error, naming it
        if (result.length === 0) empty.push(`${panel.title}: ${target.expr}`);
      }
    }
    // Every panel has data here (things that did not happen, like drops, are series at 0).
    expect(empty).toEqual([]);
  });

  it('evaluates the recording rules on the real metrics', async () => {
    const rules = await prom.api<{ groups: { name: string; rules: { name: string; health: string; lastError?: string }[] }[] }>('rules');
    const all = rules.groups.flatMap((g) => g.rules);
    expect(all.length).toBeGreaterThanOrEqual(12);
    for (const r of all) expect(r, r.name).toMatchObject({ health: 'ok' });
    expect(value(await prom.query('asa:llm_cost_usd_per_hour:rate5m', at))).toBeGreaterThan(0);
    const p95 = await prom.query('asa:llm_latency_seconds:p95_5m', at);
    expect(value(p95, { model: LARGE })).toBeCloseTo(0.48, 9); // bucket (0.1, 0.5] at 95 %
  });
});
