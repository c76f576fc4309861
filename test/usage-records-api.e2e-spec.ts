import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UsageRecord } from '../src/plugins/sdk';
import { createTestApp, TestApp } from './support/create-app';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';
import { ADMIN_KEY, ALICE_KEY, bearer, writeApiKeys } from './support/tasks';
import { DAY_MS, recordAll, usageRecord } from './support/usage-records';

/**
 * GET /api/v1/usage/records and /usage/latency over records fed through the real UsageRecorder and
 * database sink: order, keyset pages across equal timestamps, each filter, user-key scoping, and a
 * 400 naming the parameter for each kind of bad input.
 */
function recordsApiSuite(env: () => Record<string, string>) {
  let t: TestApp;
  let keysDir: string;
  const now = Date.now();
  const at = now - 3_600_000;
  const records: UsageRecord[] = [
    // Seven calls in one millisecond: pages must split them by id without losing or repeating one.
    ...Array.from({ length: 7 }, (_, i) =>
      usageRecord({ taskId: 'task-a', userId: 'alice', requestedModel: 'gpt-4o-mini', costNanos: 1_000 + i, latencyMs: 100 + i * 10, createdAtMs: at }),
    ),
    usageRecord({ taskId: 'task-a', userId: 'alice', requestedModel: 'gpt-4o', costNanos: 123_456_789_012, latencyMs: 2_000, createdAtMs: at + 10 }),
    usageRecord({ taskId: 'task-a', userId: 'alice', requestedModel: 'gpt-4o', status: 'error', errorType: 'http_429', costNanos: 0, latencyMs: 5, createdAtMs: at + 20 }),
    usageRecord({ taskId: 'task-b', userId: 'bob', requestedModel: 'custom-model', costNanos: null, unpriced: true, priceSource: null, latencyMs: 300, createdAtMs: at - 2 * DAY_MS, tags: { team: 'search' } }),
    usageRecord({ taskId: null, userId: null, requestedModel: 'gpt-4o-mini', costNanos: 5, latencyMs: 40, estimated: true, createdAtMs: at - 10 * DAY_MS }),
    // Latencies within one 10 ms bucket of the percentile query, and one exactly on a bucket edge.
    ...[131.25, 133.5, 130, 139.999].map((latencyMs, i) => usageRecord({ taskId: 'task-c', userId: 'carol', requestedModel: 'gpt-4o-mini', latencyMs, createdAtMs: at - DAY_MS - i })),
  ];
  const newestFirst = [...records].sort((a, b) => b.createdAtMs - a.createdAtMs || (a.id < b.id ? 1 : -1));
  const get = (url: string, key = ADMIN_KEY) => t.app.inject({ method: 'GET', url, headers: bearer(key) });

  beforeAll(async () => {
    keysDir = mkdtempSync(join(tmpdir(), 'asa-records-keys-'));
    t = await createTestApp({ env: { API_KEYS_FILE: writeApiKeys(keysDir), ...env() } });
    await recordAll(t.app, records);
  });
  afterAll(async () => {
    await t?.close();
    rmSync(keysDir, { recursive: true, force: true });
  });

  it('lists every record newest first with its exact cost, and pages through equal timestamps by cursor', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await get(`/api/v1/usage/records?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.records.length).toBeLessThanOrEqual(3);
      seen.push(...body.records.map((r: { id: string }) => r.id));
      cursor = body.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(seen).toEqual(newestFirst.map((r) => r.id));
    expect(pages).toBe(Math.ceil(records.length / 3));

    const one = (await get('/api/v1/usage/records?limit=1')).json().records[0];
    const newest = newestFirst[0];
    expect(one).toEqual({
      id: newest.id, created_at: new Date(newest.createdAtMs).toISOString(), task_id: 'task-a', user_id: 'alice', trace_id: null,
      provider: 'openai', operation: 'chat', requested_model: 'gpt-4o', response_model: newest.responseModel, status: 'error', error_type: 'http_429',
      input_tokens: newest.inputTokens, cached_input_tokens: 0, cache_write_tokens: 0, output_tokens: newest.outputTokens, reasoning_tokens: 0,
      total_tokens: newest.totalTokens, cost_usd: 0, cost_usd_exact: '0.000000000', unpriced: false, estimated: false, price_source: 'test',
      latency_ms: 5, ttft_ms: null, streamed: false, tags: null,
    });
    const big = (await get('/api/v1/usage/records?model=gpt-4o&status=success')).json().records;
    expect(big).toHaveLength(1);
    expect(big[0].cost_usd_exact).toBe('123.456789012');
    const unpriced = (await get('/api/v1/usage/records?user_id=bob')).json().records;
    expect(unpriced.map((r: { cost_usd: null; cost_usd_exact: null; unpriced: boolean; tags: unknown }) => [r.cost_usd, r.cost_usd_exact, r.unpriced, r.tags])).toEqual([[null, null, true, { team: 'search' }]]);
  });

  it('filters by user, task, model, status and time', async () => {
    const ids = async (q: string) => (await get(`/api/v1/usage/records?limit=500&${q}`)).json().records.map((r: { id: string }) => r.id);
    const expected = (f: (r: UsageRecord) => boolean) => newestFirst.filter(f).map((r) => r.id);
    expect(await ids('task_id=task-a')).toEqual(expected((r) => r.taskId === 'task-a'));
    expect(await ids('user_id=alice&model=gpt-4o-mini')).toEqual(expected((r) => r.userId === 'alice' && r.requestedModel === 'gpt-4o-mini'));
    expect(await ids('status=error')).toEqual(expected((r) => r.status === 'error'));
    const from = new Date(at - 3 * DAY_MS).toISOString();
    const to = new Date(at + 10).toISOString();
    expect(await ids(`from=${from}&to=${to}`)).toEqual(expected((r) => r.createdAtMs >= at - 3 * DAY_MS && r.createdAtMs < at + 10));
    expect(await ids('task_id=nothing-here')).toEqual([]);
  });

  it('gives a user key only its own records, and a 403 for another user', async () => {
    const mine = (await get('/api/v1/usage/records?limit=500', ALICE_KEY)).json().records;
    expect(mine.length).toBe(records.filter((r) => r.userId === 'alice').length);
    expect(mine.every((r: { user_id: string }) => r.user_id === 'alice')).toBe(true);
    expect((await get('/api/v1/usage/records?task_id=task-b', ALICE_KEY)).json().records).toEqual([]);
    const other = await get('/api/v1/usage/records?user_id=bob', ALICE_KEY);
    expect(other.statusCode).toBe(403);
    expect(other.json().message).toMatch(/user "bob"/);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/usage/records' })).statusCode).toBe(401);
  });

  it('answers a 400 naming the parameter for each bad filter', async () => {
    const cases: [string, RegExp][] = [
      ['status=ok', /status must be one of: success, error/],
      ['limit=0', /limit must be a whole number from 1 to 500/],
      ['limit=501', /limit must be a whole number from 1 to 500/],
      ['limit=1e2', /limit must be a whole number/],
      ['from=yesterday', /from must be an ISO 8601 timestamp/],
      ['from=2026-12-02T00:00:00%2B99:99', /from must be an ISO 8601 timestamp/],
      ['to=2026-12-02T00:00:00-13:00', /to must be an ISO 8601 timestamp/],
      ['from=2026-11-25T10:00:00', /from must be an ISO 8601 timestamp with a time zone/],
      ['to=2026-02-30', /to must be an ISO 8601/],
      ['from=2026-11-26&to=2026-11-25', /to must be after from/],
      ['cursor=abc', /cursor is not valid/],
      ['user_id=a%20b', /user_id must be/],
      ['task_id=' + 'x'.repeat(65), /task_id must be/],
      ['model=a%20b', /model must be a model name/],
      ['sort=asc', /sort/],
    ];
    for (const [q, message] of cases) {
      const res = await get(`/api/v1/usage/records?${q}`);
      expect(res.statusCode, q).toBe(400);
      expect(res.json().message, q).toMatch(message);
    }
  });

  it('gives the nearest-rank median and p95 latency of the window, scoped like the records', async () => {
    const inWeek = records.filter((r) => r.createdAtMs >= now - 7 * DAY_MS).map((r) => r.latencyMs).sort((a, b) => a - b);
    const rank = (p: number) => inWeek[Math.ceil(p * inWeek.length) - 1];
    const res = await get('/api/v1/usage/latency?days=7');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ days: 7, requests: inWeek.length, p50_latency_ms: rank(0.5), p95_latency_ms: rank(0.95) });
    // The median falls inside the crowded 130-140 ms bucket here: 14 calls, the 7th.
    expect(inWeek).toHaveLength(14);
    expect(rank(0.5)).toBe(131.25);
    const alice = (await get('/api/v1/usage/latency?days=30', ALICE_KEY)).json();
    expect(alice.requests).toBe(records.filter((r) => r.userId === 'alice').length);
    expect(alice.p95_latency_ms).toBe(2_000);
    expect((await get('/api/v1/usage/latency?days=0')).json().message).toMatch(/days must be at least 1/);
  });
}

describe('usage records API (SQLite)', () => {
  recordsApiSuite(() => ({}));
});

describePostgres('usage records API', () => {
  let db: ScratchDatabase;
  beforeAll(async () => {
    db = await createScratchPostgres();
  });
  afterAll(() => db?.drop());
  recordsApiSuite(() => ({ DATABASE_URL: db.url }));
});
