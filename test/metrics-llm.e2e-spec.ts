import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { LLM_LATENCY_BUCKETS, LLM_TTFT_BUCKETS, OTHER_MODELS_LABEL, PrometheusUsageSink } from '../src/plugins/sinks/prometheus-usage.sink';
import type { UsageRecord } from '../src/plugins/sdk';
import { createTestApp, TestApp } from './support/create-app';
import { usageRecord } from './support/usage-records';

const OPENMETRICS_ACCEPT = 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
const TRACE_A = '0af7651916cd43dd8448eb211c80319c';

/** A record that counts nothing unless the test says so. */
const record = (over: Partial<UsageRecord>): UsageRecord =>
  usageRecord({
    taskId: 'task-1',
    userId: 'user-1',
    requestedModel: 'gpt-4o',
    responseModel: 'gpt-4o-2024-08-06',
    inputTokens: 0,
    outputTokens: 0,
    totalTokens: 0,
    costNanos: 0,
    latencyMs: 0,
    ...over,
  });

function sample(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1).split(' ')[0]);
}

async function scrape(t: TestApp, accept?: string): Promise<string> {
  const res = await t.app.inject({ method: 'GET', url: '/metrics', headers: accept ? { accept } : {} });
  expect(res.statusCode).toBe(200);
  return res.body;
}

describe('LLM metrics from usage records (Prometheus usage sink)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
    const recorder = t.app.get(UsageRecorder);
    await recorder.record(
      record({
        traceId: TRACE_A,
        inputTokens: 1200,
        cachedInputTokens: 200,
        outputTokens: 300,
        reasoningTokens: 100,
        totalTokens: 1500,
        costNanos: 5_250_000, // $0.00525
        latencyMs: 1800,
        timeToFirstTokenMs: 420,
        streamed: true,
      }),
    );
    await recorder.record(record({ inputTokens: 10, outputTokens: 5, totalTokens: 15, costNanos: 75_000, latencyMs: 80 }));
    await recorder.record(
      record({ status: 'error', errorType: 'http_429', responseModel: null, costNanos: 0, latencyMs: 40_000 }),
    );
    await recorder.record(
      record({ requestedModel: 'my-local-model', costNanos: null, unpriced: true, inputTokens: 7, outputTokens: 3, totalTokens: 10, latencyMs: 300 }),
    );
    await recorder.flush();
  });
  afterAll(() => t?.close());

  it('counts requests by model, provider and status, and errors by class', async () => {
    const body = await scrape(t);
    expect(sample(body, 'llm_requests_total{model="gpt-4o",provider="openai",status="success"}')).toBe(2);
    expect(sample(body, 'llm_requests_total{model="gpt-4o",provider="openai",status="error"}')).toBe(1);
    expect(sample(body, 'llm_requests_total{model="my-local-model",provider="openai",status="success"}')).toBe(1);
    expect(sample(body, 'llm_request_errors_total{model="gpt-4o",provider="openai",error_type="http_429"}')).toBe(1);
  });

  it('counts tokens by disjoint type, so their sum is the total', async () => {
    const body = await scrape(t);
    expect(sample(body, 'llm_tokens_total{model="gpt-4o",type="input"}')).toBe(1000 + 10);
    expect(sample(body, 'llm_tokens_total{model="gpt-4o",type="cached_input"}')).toBe(200);
    expect(sample(body, 'llm_tokens_total{model="gpt-4o",type="output"}')).toBe(200 + 5);
    expect(sample(body, 'llm_tokens_total{model="gpt-4o",type="reasoning"}')).toBe(100);
    expect(body).not.toContain('user=');
  });

  it('adds exact costs, and counts unpriced calls instead of pricing them at 0', async () => {
    const body = await scrape(t);
    expect(sample(body, 'llm_cost_usd_total{model="gpt-4o"}')).toBeCloseTo(0.005325, 12);
    expect(sample(body, 'llm_cost_usd_total{model="my-local-model"}')).toBeUndefined();
    expect(sample(body, 'llm_unpriced_requests_total{model="my-local-model",provider="openai"}')).toBe(1);
  });

  it('observes latency (0.1 s to 2 min buckets) and time to first token', async () => {
    const body = await scrape(t);
    const bucket = (le: string) => sample(body, `llm_latency_seconds_bucket{le="${le}",model="gpt-4o",provider="openai"}`);
    expect(bucket('0.1')).toBe(1);
    expect(bucket('2')).toBe(2);
    expect(bucket('30')).toBe(2);
    expect(bucket('60')).toBe(3);
    expect(bucket('120')).toBe(3);
    expect(sample(body, 'llm_latency_seconds_sum{model="gpt-4o",provider="openai"}')).toBeCloseTo(41.88, 9);
    expect(sample(body, 'llm_time_to_first_token_seconds_count{model="gpt-4o",provider="openai"}')).toBe(1);
    expect(sample(body, 'llm_time_to_first_token_seconds_bucket{le="0.5",model="gpt-4o",provider="openai"}')).toBe(1);
  });

  it('links histogram buckets and the cost counter to the trace with OpenMetrics exemplars', async () => {
    const body = await scrape(t, OPENMETRICS_ACCEPT);
    const exemplar = new RegExp(`^llm_latency_seconds_bucket\\{le="2",model="gpt-4o",provider="openai"\\} 2 # \\{trace_id="${TRACE_A}"\\} 1\\.8 \\d+(\\.\\d+)?$`, 'm');
    expect(body).toMatch(exemplar);
    expect(body).toMatch(new RegExp(`^llm_cost_usd_total\\{model="gpt-4o"\\} [0-9.e-]+ # \\{trace_id="${TRACE_A}"\\} 0\\.00525 `, 'm'));
    expect(body).toMatch(new RegExp(`^llm_time_to_first_token_seconds_bucket\\{le="0.5",model="gpt-4o",provider="openai"\\} 1 # \\{trace_id="${TRACE_A}"\\} 0\\.42 `, 'm'));
    // A call without a trace adds no exemplar (and never an empty one).
    expect(body).not.toContain('# {}');
    // Exemplars exist only in OpenMetrics.
    expect(await scrape(t)).not.toContain('trace_id');
  });

  it('reports every usage sink: written records, queue depth, errors and drops', async () => {
    const body = await scrape(t);
    for (const sink of ['database', 'prometheus']) {
      expect(sample(body, `usage_sink_written_records_total{sink="${sink}"}`)).toBe(4);
      expect(sample(body, `usage_sink_queue_depth{sink="${sink}"}`)).toBe(0);
      expect(sample(body, `usage_sink_write_errors_total{sink="${sink}"}`)).toBe(0);
      expect(sample(body, `usage_sink_dropped_records_total{sink="${sink}"}`)).toBe(0);
    }
  });
});

describe('METRICS_EXTRA_LABELS=user', () => {
  it('adds the user label to requests, tokens and cost only', async () => {
    const t = await createTestApp({ env: { METRICS_EXTRA_LABELS: 'user' } });
    try {
      const recorder = t.app.get(UsageRecorder);
      await recorder.record(record({ userId: 'alice', inputTokens: 4, outputTokens: 2, totalTokens: 6, costNanos: 1_000, latencyMs: 500 }));
      await recorder.record(record({ userId: null, inputTokens: 1, outputTokens: 1, totalTokens: 2, costNanos: 3_000, latencyMs: 500 }));
      await recorder.flush();
      const body = await scrape(t);
      expect(sample(body, 'llm_requests_total{model="gpt-4o",provider="openai",status="success",user="alice"}')).toBe(1);
      expect(sample(body, 'llm_requests_total{model="gpt-4o",provider="openai",status="success",user=""}')).toBe(1);
      expect(sample(body, 'llm_tokens_total{model="gpt-4o",type="input",user="alice"}')).toBe(4);
      expect(sample(body, 'llm_cost_usd_total{model="gpt-4o",user="alice"}')).toBeCloseTo(0.000001, 15);
      expect(sample(body, 'llm_latency_seconds_count{model="gpt-4o",provider="openai"}')).toBe(2);
    } finally {
      await t.close();
    }
  });

  it('refuses any other label at boot, naming the variable', async () => {
    await expect(createTestApp({ env: { METRICS_EXTRA_LABELS: 'task' } })).rejects.toThrow(/METRICS_EXTRA_LABELS/);
  });
});

describe('series of models no longer used', () => {
  const HOUR = 3_600_000;
  const modelSeries = (body: string, model: string) => body.split('\n').filter((l) => l.startsWith('llm_') && l.includes(`model="${model}"`));

  it('are removed from /metrics after METRICS_MODEL_SERIES_TTL_HOURS, every metric of the model; models in use keep theirs', async () => {
    const t = await createTestApp({ env: { METRICS_MODEL_SERIES_TTL_HOURS: '24' } });
    try {
      const recorder = t.app.get(UsageRecorder);
      const sink = t.app.get(PrometheusUsageSink);
      let clock = Date.parse('2026-11-01T00:00:00Z');
      sink.now = () => clock;
      const calls = (model: string) => [
        record({ requestedModel: model, inputTokens: 5, outputTokens: 2, totalTokens: 7, costNanos: 1_000, latencyMs: 700, timeToFirstTokenMs: 200, streamed: true }),
        record({ requestedModel: model, status: 'error', errorType: 'timeout', latencyMs: 30_000 }),
        record({ requestedModel: model, costNanos: null, unpriced: true, latencyMs: 10 }),
      ];
      for (const r of [...calls('old-model'), ...calls('busy-model')]) await recorder.record(r);
      await recorder.flush();
      const before = await scrape(t);
      // Each model: requests ×2, errors, tokens ×2, cost, unpriced, and two histograms (buckets + +Inf + sum + count).
      const perModel = 2 + 1 + 2 + 1 + 1 + (LLM_LATENCY_BUCKETS.length + 3) + (LLM_TTFT_BUCKETS.length + 3);
      expect(modelSeries(before, 'old-model')).toHaveLength(perModel);
      expect(modelSeries(before, 'busy-model')).toHaveLength(perModel);

      clock += 23 * HOUR;
      await recorder.record(calls('busy-model')[0]);
      await recorder.flush();
      expect(await sink.removeStaleSeries()).toEqual([]); // 23 h: nothing is stale yet

      clock += 2 * HOUR; // old-model unused for 25 h, busy-model for 2 h
      expect(await sink.removeStaleSeries()).toEqual(['old-model']);
      const after = await scrape(t);
      expect(modelSeries(after, 'old-model')).toEqual([]);
      expect(sample(after, 'llm_requests_total{model="busy-model",provider="openai",status="success"}')).toBe(3);
      expect(modelSeries(after, 'busy-model')).toHaveLength(perModel);

      // Used again: its series start again from this call.
      await recorder.record(calls('old-model')[0]);
      await recorder.flush();
      expect(sample(await scrape(t), 'llm_requests_total{model="old-model",provider="openai",status="success"}')).toBe(1);
    } finally {
      await t.close();
    }
  });

  it('are kept forever with METRICS_MODEL_SERIES_TTL_HOURS=0', async () => {
    const t = await createTestApp({ env: { METRICS_MODEL_SERIES_TTL_HOURS: '0' } });
    try {
      const sink = t.app.get(PrometheusUsageSink);
      let clock = Date.now();
      sink.now = () => clock;
      await t.app.get(UsageRecorder).record(record({ requestedModel: 'kept-model', latencyMs: 100 }));
      await t.app.get(UsageRecorder).flush();
      clock += 1000 * 24 * HOUR;
      expect(await sink.removeStaleSeries()).toEqual([]);
      expect(sample(await scrape(t), 'llm_requests_total{model="kept-model",provider="openai",status="success"}')).toBe(1);
    } finally {
      await t.close();
    }
  });

  it('refuses a TTL that is not a whole number of hours, naming the variable', async () => {
    await expect(createTestApp({ env: { METRICS_MODEL_SERIES_TTL_HOURS: 'a day' } })).rejects.toThrow(/METRICS_MODEL_SERIES_TTL_HOURS must be a whole number of hours/);
  });
});


describe('distinct models on the LLM metrics (METRICS_MAX_MODELS)', () => {
  const HOUR = 3_600_000;
  const modelsIn = (body: string) => new Set([...body.matchAll(/^llm_\w+\{[^}]*model="([^"]*)"/gm)].map((m) => m[1]));
  const total = (body: string, metric: string) =>
    body
      .split('\n')
      .filter((l) => l.startsWith(`${metric}{`))
      .reduce((sum, l) => sum + Number(l.slice(l.indexOf('} ') + 2).split(' ')[0]), 0);
  const call = (model: string, n: number) =>
    record({ requestedModel: model, inputTokens: n, outputTokens: 1, totalTokens: n + 1, costNanos: 1_000 * n, latencyMs: 100 });

  it('past the limit, new models are counted under model="(other)": every sum stays exact, one warning per period; a swept model frees its slot', async () => {
    const t = await createTestApp({ env: { METRICS_MAX_MODELS: '3', METRICS_MODEL_SERIES_TTL_HOURS: '24' } });
    try {
      const recorder = t.app.get(UsageRecorder);
      const sink = t.app.get(PrometheusUsageSink);
      const warn = vi.spyOn((sink as unknown as { logger: { warn: (m: string) => void } }).logger, 'warn');
      let clock = Date.parse('2026-11-01T00:00:00Z');
      sink.now = () => clock;
      const models = ['m-1', 'm-2', 'm-3', 'm-4', 'm-5', 'm-6'];
      for (const [i, model] of models.entries()) await recorder.record(call(model, i + 1));
      await recorder.record(record({ requestedModel: 'm-7', status: 'error', errorType: 'http_404', latencyMs: 5 }));
      await recorder.record(call('m-1', 10)); // a model with a slot keeps it
      await recorder.flush();

      const body = await scrape(t);
      expect(modelsIn(body)).toEqual(new Set(['m-1', 'm-2', 'm-3', OTHER_MODELS_LABEL]));
      expect(sample(body, `llm_requests_total{model="${OTHER_MODELS_LABEL}",provider="openai",status="success"}`)).toBe(3);
      expect(sample(body, `llm_requests_total{model="${OTHER_MODELS_LABEL}",provider="openai",status="error"}`)).toBe(1);
      expect(sample(body, `llm_request_errors_total{model="${OTHER_MODELS_LABEL}",provider="openai",error_type="http_404"}`)).toBe(1);
      expect(sample(body, 'llm_requests_total{model="m-1",provider="openai",status="success"}')).toBe(2);
      // Exact in sum: 8 calls, 1+2+...+6+10 input tokens, 8 output tokens, their costs.
      expect(total(body, 'llm_requests_total')).toBe(8);
      expect(total(body, 'llm_tokens_total')).toBe(31 + 7);
      expect(total(body, 'llm_cost_usd_total')).toBeCloseTo(31 * 1e-6, 12);
      expect(sample(body, `llm_latency_seconds_count{model="${OTHER_MODELS_LABEL}",provider="openai"}`)).toBe(4);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0][0]).toContain('METRICS_MAX_MODELS=3');
      expect(warn.mock.calls[0][0]).toContain('"m-4"');

      // A stale model's series are removed and its slot goes to the next new model; m-2 and m-3 stay in use.
      clock += 25 * HOUR;
      await recorder.record(call('m-2', 1));
      await recorder.record(call('m-3', 1));
      await recorder.flush();
      clock += 1;
      expect((await sink.removeStaleSeries()).sort()).toEqual(['(other)', 'm-1']);
      await recorder.record(call('m-8', 1));
      await recorder.record(call('m-9', 1));
      await recorder.flush();
      const after = await scrape(t);
      expect(modelsIn(after)).toEqual(new Set(['m-2', 'm-3', 'm-8', OTHER_MODELS_LABEL]));
      expect(sample(after, 'llm_requests_total{model="m-8",provider="openai",status="success"}')).toBe(1);
      expect(sample(after, `llm_requests_total{model="${OTHER_MODELS_LABEL}",provider="openai",status="success"}`)).toBe(1);
      // A later period warns again, once.
      expect(warn).toHaveBeenCalledTimes(2);
    } finally {
      await t.close();
    }
  });

  it('keeps 200 models by default, and every model with METRICS_MAX_MODELS=0', async () => {
    for (const [env, own] of [[{}, 200], [{ METRICS_MAX_MODELS: '0' }, 250]] as const) {
      const t = await createTestApp({ env });
      try {
        const recorder = t.app.get(UsageRecorder);
        for (let i = 0; i < 250; i++) await recorder.record(call(`model-${i}`, 1));
        await recorder.flush();
        const models = modelsIn(await scrape(t));
        expect(models.size - (models.has(OTHER_MODELS_LABEL) ? 1 : 0)).toBe(own);
        expect(models.has(OTHER_MODELS_LABEL)).toBe(own < 250);
      } finally {
        await t.close();
      }
    }
  });

  it('refuses a limit that is not a whole number of models, naming the variable', async () => {
    for (const value of ['many', '-1', '1.5']) {
      await expect(createTestApp({ env: { METRICS_MAX_MODELS: value } })).rejects.toThrow(/METRICS_MAX_MODELS must be a whole number of models/);
    }
  });
});
