import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import type { UsageRecord } from '../src/plugins/sdk';
import { createTestApp, TestApp } from './support/create-app';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';
import { DAY_MS, expectedGroups, expectedTotals, usageRecord } from './support/usage-records';

/**
 * The usage API over a known multi-model, multi-user data set, fed through the real
 * UsageRecorder and database sink; every figure is compared with a BigInt reference sum.
 */
function usageApiSuite(env: () => Record<string, string>) {
  let t: TestApp;
  const now = Date.now();
  const records: UsageRecord[] = [
    // task-a (alice): two gpt-4 calls whose costs add up to exactly 0.25 USD, one failed mini call.
    usageRecord({ taskId: 'task-a', userId: 'alice', requestedModel: 'gpt-4', inputTokens: 3000, outputTokens: 1000, totalTokens: 4000, cachedInputTokens: 500, costNanos: 123_456_789, latencyMs: 1000, createdAtMs: now - 3_600_000 }),
    usageRecord({ taskId: 'task-a', userId: 'alice', requestedModel: 'gpt-4', inputTokens: 800, outputTokens: 200, totalTokens: 1000, costNanos: 126_543_211, latencyMs: 1400, createdAtMs: now - 3_000_000 }),
    usageRecord({ taskId: 'task-a', userId: 'alice', requestedModel: 'gpt-4o-mini', responseModel: null, inputTokens: 0, outputTokens: 0, totalTokens: 0, costNanos: 0, latencyMs: 100, status: 'error', errorType: 'http_429', createdAtMs: now - 2_000_000 }),
    // task-b (bob): an estimated call with cache writes and reasoning, an unpriced call.
    usageRecord({ taskId: 'task-b', userId: 'bob', requestedModel: 'gpt-4o-mini', inputTokens: 10, outputTokens: 5, totalTokens: 15, cacheWriteTokens: 3, reasoningTokens: 2, costNanos: 7, latencyMs: 50, estimated: true, createdAtMs: now - 2 * DAY_MS }),
    usageRecord({ taskId: 'task-b', userId: 'bob', requestedModel: 'custom-model', inputTokens: 20, outputTokens: 10, totalTokens: 30, costNanos: null, unpriced: true, priceSource: null, latencyMs: 70, createdAtMs: now - 2 * DAY_MS + 1000 }),
    // carol without a task, 3 days ago, exactly one dollar.
    usageRecord({ userId: 'carol', requestedModel: 'gpt-4', costNanos: 1_000_000_000, latencyMs: 500, createdAtMs: now - 3 * DAY_MS }),
    // a call without a user.
    usageRecord({ taskId: 'task-e', userId: null, requestedModel: 'gpt-4', costNanos: 5, latencyMs: 10, createdAtMs: now - 5 * DAY_MS }),
    // the 7-day window edge: one minute inside, one minute outside.
    usageRecord({ taskId: 'task-d', userId: 'bob', requestedModel: 'gpt-4', costNanos: 11, latencyMs: 20, createdAtMs: now - 7 * DAY_MS + 60_000 }),
    usageRecord({ taskId: 'task-d', userId: 'bob', requestedModel: 'gpt-4', costNanos: 13, latencyMs: 30, createdAtMs: now - 7 * DAY_MS - 60_000 }),
    // ten days ago: only in the 30-day window.
    usageRecord({ taskId: 'task-c', userId: 'alice', requestedModel: 'gpt-4', costNanos: 999, latencyMs: 40, createdAtMs: now - 10 * DAY_MS }),
  ];
  const within = (days: number) => records.filter((r) => r.createdAtMs >= now - days * DAY_MS);
  const get = (url: string) => t.app.inject({ method: 'GET', url });

  beforeAll(async () => {
    t = await createTestApp({ env: env() });
    const recorder = t.app.get(UsageRecorder);
    for (const r of records) await recorder.record(r);
    // A second delivery of the same records must not count twice (idempotent ids).
    for (const r of records.slice(0, 3)) await recorder.record(r);
    await recorder.flush();
  });
  afterAll(() => t?.close());

  it('GET /api/v1/usage/task/{id} gives the seed fields with exact totals per model', async () => {
    const res = await get('/api/v1/usage/task/task-a');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    const taskA = records.filter((r) => r.taskId === 'task-a');
    expect(body).toEqual({ task_id: 'task-a', ...expectedTotals(taskA), by_model: expectedGroups(taskA, (r) => r.requestedModel) });
    // Hand-checked: 123456789 + 126543211 nanos = 0.25 USD; (1000 + 1400 + 100) / 3 ms.
    expect(body.total_cost_usd).toBe(0.25);
    expect(body.total_cost_usd_exact).toBe('0.250000000');
    expect(body.avg_latency_ms).toBeCloseTo(833.333, 3);
    expect(body.total_requests).toBe(3);
    expect(body.failed_requests).toBe(1);
    expect(body.by_model['gpt-4']).toMatchObject({ requests: 2, tokens: 5000, cost_usd: 0.25 });
  });

  it('reports unpriced and estimated calls of a task without inventing a cost', async () => {
    const body = (await get('/api/v1/usage/task/task-b')).json();
    expect(body).toMatchObject({ total_requests: 2, unpriced_requests: 1, estimated_requests: 1, total_cost_usd_exact: '0.000000007' });
    expect(body.by_model['custom-model']).toMatchObject({ requests: 1, unpriced_requests: 1, cost_usd_exact: '0.000000000' });
  });

  it('answers an unknown task with 404 and a clear message', async () => {
    const res = await get('/api/v1/usage/task/no-such-task');
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'USAGE_TASK_NOT_FOUND', message: expect.stringContaining('no-such-task') });
  });

  it('GET /api/v1/usage/overall: totals, success rate, by_model and by_user over the window', async () => {
    for (const days of [7, 30]) {
      const res = await get(`/api/v1/usage/overall?days=${days}`);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      const w = within(days);
      const { from, to, ...rest } = body;
      expect(rest).toEqual({
        days,
        ...expectedTotals(w),
        success_rate_percent: Math.round(((w.length - w.filter((r) => r.status !== 'success').length) / w.length) * 10_000) / 100,
        by_model: expectedGroups(w, (r) => r.requestedModel),
        by_user: expectedGroups(w, (r) => r.userId ?? '(none)'),
      });
      expect(Date.parse(to) - Date.parse(from)).toBe(days * DAY_MS);
    }
  });

  it('uses the days window edge: one minute inside counts, one minute outside does not', async () => {
    const d7 = (await get('/api/v1/usage/overall?days=7')).json();
    expect(d7.by_user.bob.requests).toBe(3); // two task-b calls + the one inside the edge
    expect(d7.total_requests).toBe(8);
    expect((await get('/api/v1/usage/overall')).json().total_requests).toBe(8); // days defaults to 7
    const d1 = (await get('/api/v1/usage/overall?days=1')).json();
    expect(d1.total_requests).toBe(3);
    expect(d1.success_rate_percent).toBe(66.67);
  });

  it('GET /api/v1/usage/user/{id}: one user, per model', async () => {
    const res = await get('/api/v1/usage/user/bob?days=30');
    expect(res.statusCode).toBe(200);
    const bob = records.filter((r) => r.userId === 'bob');
    const { from: _f, to: _t, ...rest } = res.json();
    expect(rest).toEqual({
      user_id: 'bob',
      days: 30,
      ...expectedTotals(bob),
      success_rate_percent: 100,
      by_model: expectedGroups(bob, (r) => r.requestedModel),
    });
    const nobody = (await get('/api/v1/usage/user/nobody')).json();
    expect(nobody).toMatchObject({ user_id: 'nobody', total_requests: 0, total_cost_usd: 0, total_cost_usd_exact: '0.000000000', by_model: {} });
  });

  it('GET /api/v1/usage/timeseries: daily and hourly UTC buckets per model and per user', async () => {
    for (const [interval, width] of [['day', DAY_MS], ['hour', 3_600_000]] as const) {
      for (const groupBy of ['model', 'user'] as const) {
        const res = await get(`/api/v1/usage/timeseries?days=30&interval=${interval}&group_by=${groupBy}`);
        expect(res.statusCode).toBe(200);
        const body = res.json();
        const w = within(30);
        const starts = [...new Set(w.map((r) => Math.floor(r.createdAtMs / width) * width))].sort((a, b) => a - b);
        expect(body).toMatchObject({ days: 30, interval, group_by: groupBy, ...expectedTotals(w) });
        expect(body.buckets.map((b: { start: string }) => b.start)).toEqual(starts.map((s) => new Date(s).toISOString()));
        for (const bucket of body.buckets) {
          const inBucket = w.filter((r) => Math.floor(r.createdAtMs / width) * width === Date.parse(bucket.start));
          const { total_requests, total_cost_usd_exact } = expectedTotals(inBucket);
          expect(bucket.requests).toBe(total_requests);
          expect(bucket.cost_usd_exact).toBe(total_cost_usd_exact);
          expect(bucket.groups).toEqual(
            expectedGroups(inBucket, (r) => (groupBy === 'model' ? r.requestedModel : (r.userId ?? '(none)'))),
          );
        }
      }
    }
    const defaults = (await get('/api/v1/usage/timeseries')).json();
    expect(defaults).toMatchObject({ days: 7, interval: 'day', group_by: 'model' });
  });

  it.each([
    ['/api/v1/usage/overall?days=-1', 'days'],
    ['/api/v1/usage/overall?days=abc', 'days'],
    ['/api/v1/usage/overall?days=0', 'days'],
    ['/api/v1/usage/overall?days=1.5', 'days'],
    ['/api/v1/usage/overall?days=3651', 'days'],
    ['/api/v1/usage/overall?days=1&days=2', 'days'],
    ['/api/v1/usage/overall?foo=1', 'foo'],
    ['/api/v1/usage/user/bob?days=x', 'days'],
    ['/api/v1/usage/user/bad%20id', 'user_id'],
    ['/api/v1/usage/user/alice%3Bdrop', 'user_id'],
    ['/api/v1/usage/task/bad%2Fid', 'task_id'],
    [`/api/v1/usage/task/${'t'.repeat(65)}`, 'task_id'],
    ['/api/v1/usage/task/task-a?days=7', 'days'],
    ['/api/v1/usage/timeseries?interval=week', 'interval'],
    ['/api/v1/usage/timeseries?group_by=task', 'group_by'],
    ['/api/v1/usage/timeseries?interval=hour&days=365', 'days'],
    // The timeseries query inherits the window rules of `days` (a subclass once lost them).
    ...['abc', '-1', '0', '1.5', '4000', 'NaN', 'Infinity', '1e308', '-99999999', '7&days=8'].map(
      (days) => [`/api/v1/usage/timeseries?days=${days}`, 'days'] as [string, string],
    ),
    ['/api/v1/usage/timeseries?days=abc&interval=hour', 'days must be a whole number'],
  ])('GET %s is a 400 naming %s', async (url, field) => {
    const res = await get(url);
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toContain(field);
  });

  it('names only the kind of value expected when a value is of the wrong kind', async () => {
    const kind = 'days must be a whole number of days, written in decimal digits (got "abc")';
    expect((await get('/api/v1/usage/overall?days=abc')).json()).toMatchObject({ message: kind, errors: [kind] });
    expect((await get('/api/v1/usage/overall?days=0')).json().message).toBe('days must be at least 1');
  });

  it('accepts user ids up to 100 characters; longer path parameters are refused by Fastify with 414', async () => {
    expect((await get(`/api/v1/usage/user/${'u'.repeat(100)}`)).statusCode).toBe(200);
    const long = await get(`/api/v1/usage/user/${'u'.repeat(5000)}`);
    expect(long.statusCode).toBe(414);
    expect(long.json()).toEqual({ statusCode: 414, error: 'URI Too Long', code: 'FST_ERR_MAX_PARAM_LENGTH', message: 'a path parameter is longer than 100 characters' });
    const badEscape = await get('/api/v1/usage/user/%E0%A4%A');
    expect(badEscape.statusCode).toBe(400);
    expect(badEscape.json()).toMatchObject({ statusCode: 400, error: 'Bad Request', message: 'the URL is not valid: a %-escape in its path does not decode' });
  });

  it('documents every usage endpoint in OpenAPI with response and error schemas', async () => {
    const doc = (await get('/docs-json')).json();
    for (const path of [
      '/api/v1/usage/task/{task_id}',
      '/api/v1/usage/overall',
      '/api/v1/usage/user/{user_id}',
      '/api/v1/usage/timeseries',
    ]) {
      const op = doc.paths[path]?.get;
      expect(op, path).toBeDefined();
      expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['200', '400', '401', '403', '503']));
    }
    expect(doc.paths['/api/v1/usage/task/{task_id}'].get.responses['404']).toBeDefined();
    expect(doc.components.schemas.OverallUsageDto.properties).toHaveProperty('total_cost_usd_exact');
    expect(doc.paths['/api/v1/usage/overall'].get.parameters.map((p: { name: string }) => p.name)).toContain('days');
  });
}

describe('usage API (SQLite)', () => {
  usageApiSuite(() => ({}));
});

describePostgres('usage API', () => {
  let db: ScratchDatabase;
  beforeAll(async () => {
    db = await createScratchPostgres();
  });
  afterAll(() => db?.drop());
  usageApiSuite(() => ({ DATABASE_URL: db.url }));
});
