import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { MIGRATIONS } from '../src/database/migration-list';
import { CreateUsageRollups1764600000000 } from '../src/database/migrations/1764600000000-CreateUsageRollups';
import { rebuildRollups } from '../src/modules/usage/rollups/rollup-rebuild';
import { HOUR_MS, WEEK_MS } from '../src/modules/usage/rollups/rollup-schema';
import { JobLeaseService } from '../src/database/job-lease.service';
import { RETENTION_LEASE, UsageRetentionService } from '../src/modules/usage/rollups/usage-retention.service';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import type { UsageRecord } from '../src/plugins/sdk';
import { bearer, writeApiKeysFile } from './support/api-keys';
import { createTestApp, TestApp } from './support/create-app';
import { waitFor } from './support/pipeline';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';
import { DAY_MS, expectedGroups, expectedTotals, recordAll, seededRandom, usageRecord } from './support/usage-records';

// Long enough that most windows hold whole weeks of the weekly rollup, and their edges.
const SPAN_DAYS = 24;
const ADMIN_KEY = 'rollups-admin-key';
const USER_KEY = 'rollups-u1-key';

/**
 * `count` records spread at random over the last SPAN_DAYS days (seeded): several models, users
 * (and none), providers, tasks, failures, unpriced and estimated calls, costs that use every
 * nano-dollar digit and fractional latencies; then records on and around each week edge of the
 * span (the weekly rollup's boundaries: a millisecond, an hour and a day either side), and two
 * ahead of the clock (an hour and a half, and eight days). Ids are
 * derived from the seed, so a second call with the same seed gives the same records (a replay).
 */
function generate(seed: number, count: number, nowMs: number): UsageRecord[] {
  const rnd = seededRandom(seed);
  const pick = <T>(list: readonly T[]) => list[Math.floor(rnd() * list.length)];
  const spanStart = nowMs - 60_000 - SPAN_DAYS * DAY_MS;
  const edgeTimes: number[] = [];
  for (let week = Math.ceil(spanStart / WEEK_MS) * WEEK_MS; week < nowMs - 60_000; week += WEEK_MS) {
    for (const d of [-DAY_MS, -HOUR_MS, -1, 0, 1, HOUR_MS - 1, DAY_MS]) if (week + d > spanStart && week + d < nowMs - 60_000) edgeTimes.push(week + d);
  }
  // Stamped ahead of this process's clock (another replica's): a window ending now counts them too.
  edgeTimes.push(nowMs + 90 * 60_000, nowMs + 8 * DAY_MS);
  const out: UsageRecord[] = [];
  for (let i = 0; i < count + edgeTimes.length; i++) {
    const unpriced = rnd() < 0.05;
    const input = Math.floor(rnd() * 5000);
    const output = Math.floor(rnd() * 2000);
    out.push(
      usageRecord({
        id: `00000000-0000-4000-8000-${seed.toString(16).padStart(4, '0')}${i.toString(16).padStart(8, '0')}`,
        createdAtMs: i < count ? nowMs - 60_000 - Math.floor(rnd() * SPAN_DAYS * DAY_MS) : edgeTimes[i - count],
        taskId: rnd() < 0.2 ? null : `task-${Math.floor(rnd() * 40)}`,
        userId: pick(['u0', 'u1', 'u2', 'u3', 'u4', 'u5', 'u6', 'u7', 'u8', null]),
        provider: pick(['openai', 'anthropic']),
        requestedModel: pick(['m-a', 'm-b', 'm-c', 'm-d', 'm-e']),
        inputTokens: input,
        outputTokens: output,
        totalTokens: input + output,
        cachedInputTokens: Math.floor(input * rnd() * 0.5),
        cacheWriteTokens: rnd() < 0.1 ? Math.floor(rnd() * 100) : 0,
        reasoningTokens: Math.floor(output * rnd() * 0.3),
        costNanos: unpriced ? null : Math.floor(rnd() * 5_000_000_000) + 1,
        unpriced,
        priceSource: unpriced ? null : 'test',
        latencyMs: rnd() * 5000,
        status: rnd() < 0.15 ? 'error' : 'success',
        errorType: null,
        estimated: rnd() < 0.1,
      }),
    );
  }
  return out;
}

const breakdownOf = (records: UsageRecord[]) => {
  const { total_requests, total_tokens, total_cost_usd, total_cost_usd_exact, avg_latency_ms: _avg, ...rest } = expectedTotals(records);
  return { requests: total_requests, tokens: total_tokens, cost_usd: total_cost_usd, cost_usd_exact: total_cost_usd_exact, ...rest };
};

const userKey = (r: UsageRecord) => r.userId ?? '(none)';
const costOf = (records: UsageRecord[]) => records.reduce((n, r) => n + BigInt(r.costNanos ?? 0), 0n);

/** Users of `records`, cost descending then id ascending: the API's order. */
function rankedUsers(records: UsageRecord[]): [string, UsageRecord[]][] {
  const by = new Map<string, UsageRecord[]>();
  for (const r of records) by.set(userKey(r), [...(by.get(userKey(r)) ?? []), r]);
  return [...by.entries()].sort(([ka, a], [kb, b]) => {
    const ca = costOf(a);
    const cb = costOf(b);
    if (ca !== cb) return ca > cb ? -1 : 1;
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}

function expectedBuckets(records: UsageRecord[], widthMs: number, key: (r: UsageRecord) => string) {
  const by = new Map<number, UsageRecord[]>();
  for (const r of records) {
    const start = Math.floor(r.createdAtMs / widthMs) * widthMs;
    by.set(start, [...(by.get(start) ?? []), r]);
  }
  return [...by.entries()]
    .sort(([a], [b]) => a - b)
    .map(([start, list]) => ({ start: new Date(start).toISOString(), ...breakdownOf(list), groups: expectedGroups(list, key) }));
}

/**
 * Checks every window endpoint against a reference computed from the records themselves, on
 * `n` windows of random length (seeded). The service picks "now" at each request, so each window
 * starts at an arbitrary point inside an hour: the raw edges and the rollup hours both count.
 */
async function expectWindowsExact(t: TestApp, records: UsageRecord[], seed: number, n: number): Promise<void> {
  const rnd = seededRandom(seed);
  const headers = bearer(ADMIN_KEY);
  const get = async (url: string) => {
    const res = await t.app.inject({ method: 'GET', url, headers });
    expect(res.statusCode, `${url}: ${res.body}`).toBe(200);
    return res.json();
  };
  const inWindow = (body: { from: string; to: string }) => {
    const from = Date.parse(body.from);
    return records.filter((r) => r.createdAtMs >= from);
  };
  for (let i = 0; i < n; i++) {
    const days = 1 + Math.floor(rnd() * SPAN_DAYS);
    const overall = await get(`/api/v1/usage/overall?days=${days}&top_users=10000`);
    const w = inWindow(overall);
    expect(w.length).toBeGreaterThan(0);
    expect(overall).toMatchObject({ days, ...expectedTotals(w) });
    expect(overall.by_model).toEqual(expectedGroups(w, (r) => r.requestedModel));
    expect(overall.by_user).toEqual(expectedGroups(w, userKey));

    const user = ['u0', 'u3', 'u7'][i % 3];
    const u = await get(`/api/v1/usage/user/${user}?days=${days}`);
    const uw = inWindow(u).filter((r) => r.userId === user);
    expect(u).toMatchObject({ user_id: user, ...expectedTotals(uw) });
    expect(u.by_model).toEqual(expectedGroups(uw, (r) => r.requestedModel));

    const interval = rnd() < 0.5 ? 'hour' : 'day';
    const groupBy = rnd() < 0.5 ? 'model' : 'user';
    const ts = await get(`/api/v1/usage/timeseries?days=${days}&interval=${interval}&group_by=${groupBy}`);
    const tw = inWindow(ts);
    expect(ts).toMatchObject(expectedTotals(tw));
    expect(ts.buckets).toEqual(expectedBuckets(tw, interval === 'hour' ? HOUR_MS : DAY_MS, groupBy === 'model' ? (r) => r.requestedModel : userKey));
  }
  for (const task of ['task-0', 'task-17', 'task-39']) {
    const body = await get(`/api/v1/usage/task/${task}`);
    const tr = records.filter((r) => r.taskId === task);
    expect(body).toEqual({ task_id: task, ...expectedTotals(tr), by_model: expectedGroups(tr, (r) => r.requestedModel) });
  }
}

/** The per-task summary (read by the task metrics) holds each task's exact sums: one row per task. */
async function expectTaskSummaryExact(ds: DataSource, records: UsageRecord[]): Promise<void> {
  const rows: { task_id: string; requests: unknown; cost_nanos: unknown; first_at_ms: unknown }[] = await ds.query(
    'SELECT task_id, requests, CAST(cost_nanos AS TEXT) AS cost_nanos, first_at_ms FROM llm_usage_task_summary ORDER BY task_id',
  );
  const byTask = new Map<string, UsageRecord[]>();
  for (const r of records) if (r.taskId !== null) byTask.set(r.taskId, [...(byTask.get(r.taskId) ?? []), r]);
  const expected = [...byTask.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([task_id, list]) => ({ task_id, requests: list.length, cost_nanos: String(costOf(list)), first_at_ms: Math.min(...list.map((r) => r.createdAtMs)) }));
  expect(rows.map((r) => ({ task_id: r.task_id, requests: Number(r.requests), cost_nanos: String(r.cost_nanos), first_at_ms: Number(r.first_at_ms) }))).toEqual(expected);
}

function rollupSuite(env: () => Record<string, string>) {
  let t: TestApp;
  let keysDir: string;
  const now = Date.now();
  const records = generate(14, 3000, now);
  const count = async (sql: string) => Number((await t.app.get(DataSource).query(sql))[0].n);

  beforeAll(async () => {
    keysDir = mkdtempSync(join(tmpdir(), 'asa-rollup-keys-'));
    const keys = writeApiKeysFile(keysDir, [
      { name: 'admin', key: ADMIN_KEY },
      { name: 'u1', key: USER_KEY, userId: 'u1' },
    ]);
    t = await createTestApp({ env: { ...env(), API_KEYS_FILE: keys } });
    await recordAll(t.app, records);
  });
  afterAll(async () => {
    await t?.close();
    rmSync(keysDir, { recursive: true, force: true });
  });

  it('answers every window exactly as the raw rows do (rollup hours + raw edges), on random windows', async () => {
    expect(await count('SELECT COUNT(*) AS n FROM llm_usage')).toBe(records.length);
    // Far fewer rollup rows than calls: the whole-hour part of a window reads these.
    expect(await count('SELECT COUNT(*) AS n FROM llm_usage_hourly')).toBeLessThan(records.length);
    await expectWindowsExact(t, records, 1, 12);
  });

  it('counts a replayed or repeated record once: rollups grow only by rows the insert wrote', async () => {
    const recorder = t.app.get(UsageRecorder);
    const before = await count('SELECT SUM(requests) AS n FROM llm_usage_hourly');
    // The same records again (a journal replay after a crash), in a different order.
    for (const r of [...records.slice(0, 700)].reverse()) await recorder.record(r);
    await recorder.flush();
    expect(await count('SELECT COUNT(*) AS n FROM llm_usage')).toBe(records.length);
    for (const table of ['llm_usage_hourly', 'llm_usage_daily_model', 'llm_usage_daily_user', 'llm_usage_weekly_user']) {
      expect(await count(`SELECT SUM(requests) AS n FROM ${table}`)).toBe(records.length);
    }
    expect(before).toBe(records.length);
    for (const table of ['llm_usage_task_totals', 'llm_usage_task_summary']) {
      expect(await count(`SELECT SUM(requests) AS n FROM ${table}`)).toBe(records.filter((r) => r.taskId !== null).length);
    }
    await expectWindowsExact(t, records, 2, 4);
  });

  it('npm run rollups:rebuild (rebuildRollups) restores lost or damaged rollups exactly', async () => {
    const ds = t.app.get(DataSource);
    for (const table of ['llm_usage_hourly', 'llm_usage_daily_model', 'llm_usage_daily_user', 'llm_usage_weekly_user']) {
      await ds.query(`UPDATE ${table} SET cost_nanos = cost_nanos + 1, requests = requests + 1`);
    }
    await ds.query('DELETE FROM llm_usage_task_totals');
    await ds.query('UPDATE llm_usage_task_summary SET cost_nanos = cost_nanos + 1');
    await ds.query(`DELETE FROM llm_usage_task_summary WHERE task_id = 'task-3'`);
    const damaged = (await t.app.inject({ method: 'GET', url: '/api/v1/usage/overall?days=30', headers: bearer(ADMIN_KEY) })).json();
    expect(damaged.total_requests).not.toBe(records.length);
    const r = await rebuildRollups(ds, null);
    expect(r.fromHourMs).toBe(Math.floor(Math.min(...records.map((x) => x.createdAtMs)) / HOUR_MS) * HOUR_MS);
    await expectWindowsExact(t, records, 3, 6);
    await expectTaskSummaryExact(ds, records);
  });

  it('the migration builds the rollups from the rows already there', async () => {
    const ds = t.app.get(DataSource);
    // Back to before CreateUsageRollups: it and the migrations after it undone, newest first.
    for (let i = MIGRATIONS.indexOf(CreateUsageRollups1764600000000); i < MIGRATIONS.length; i++) await ds.undoLastMigration({ transaction: 'each' });
    expect(await count(`SELECT COUNT(*) AS n FROM migrations WHERE name = 'CreateUsageRollups1764600000000'`)).toBe(0);
    expect(await count('SELECT COUNT(*) AS n FROM llm_usage')).toBe(records.length);
    await ds.runMigrations({ transaction: 'each' });
    await expectWindowsExact(t, records, 4, 4);
    await expectTaskSummaryExact(ds, records);
  });

  it('by_user names the top_users most expensive users and adds up the rest under "(others)"', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/usage/overall?days=30&top_users=3', headers: bearer(ADMIN_KEY) });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    const ranked = rankedUsers(records.filter((r) => r.createdAtMs >= Date.parse(body.from)));
    expect(Object.keys(body.by_user)).toEqual([...ranked.slice(0, 3).map(([k]) => k), '(others)']);
    for (const [k, list] of ranked.slice(0, 3)) expect(body.by_user[k]).toEqual(breakdownOf(list));
    const rest = ranked.slice(3).flatMap(([, list]) => list);
    expect(body.by_user['(others)']).toEqual({ ...breakdownOf(rest), users: ranked.length - 3 });
    // The default names at most 100 users; 0 puts everyone under "(others)".
    const none = (await t.app.inject({ method: 'GET', url: '/api/v1/usage/overall?days=30&top_users=0', headers: bearer(ADMIN_KEY) })).json();
    expect(Object.keys(none.by_user)).toEqual(['(others)']);
    expect(none.by_user['(others)'].users).toBe(ranked.length);
    for (const bad of ['-1', '10001', '2.5', 'x']) {
      const r = await t.app.inject({ method: 'GET', url: `/api/v1/usage/overall?top_users=${bad}`, headers: bearer(ADMIN_KEY) });
      expect(r.statusCode).toBe(400);
      expect(r.json().message).toMatch(/top_users/);
    }
  });

  it('GET /usage/users pages through every user in order with an opaque cursor', async () => {
    const seen: { user_id: string }[] = [];
    let cursor: string | null = null;
    let first: { from: string; to: string; total_users: number } | null = null;
    let pages = 0;
    do {
      const url: string = `/api/v1/usage/users?days=30&limit=4${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await t.app.inject({ method: 'GET', url, headers: bearer(ADMIN_KEY) });
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      first ??= body;
      expect(body.from).toBe(first!.from);
      expect(body.to).toBe(first!.to);
      expect(body.users.length).toBeLessThanOrEqual(4);
      seen.push(...body.users);
      cursor = body.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    const window = records.filter((r) => r.createdAtMs >= Date.parse(first!.from) && r.createdAtMs < Date.parse(first!.to));
    const ranked = rankedUsers(window);
    expect(first!.total_users).toBe(ranked.length);
    expect(seen).toEqual(ranked.map(([k, list]) => ({ user_id: k, ...breakdownOf(list) })));
    expect(pages).toBe(Math.ceil(ranked.length / 4));

    const bad = await t.app.inject({ method: 'GET', url: '/api/v1/usage/users?cursor=bm9wZQ', headers: bearer(ADMIN_KEY) });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/cursor/);
    const page1 = (await t.app.inject({ method: 'GET', url: '/api/v1/usage/users?days=30&limit=2', headers: bearer(ADMIN_KEY) })).json();
    const otherDays = await t.app.inject({ method: 'GET', url: `/api/v1/usage/users?days=7&cursor=${page1.next_cursor}`, headers: bearer(ADMIN_KEY) });
    expect(otherDays.statusCode).toBe(400);
    expect(otherDays.json().message).toMatch(/same days/);
    const badLimit = await t.app.inject({ method: 'GET', url: '/api/v1/usage/users?limit=0', headers: bearer(ADMIN_KEY) });
    expect(badLimit.statusCode).toBe(400);
    expect(badLimit.json().message).toMatch(/limit/);
  });

  it('a user key sees only its own user in the list and in by_user', async () => {
    const list = (await t.app.inject({ method: 'GET', url: '/api/v1/usage/users?days=30', headers: bearer(USER_KEY) })).json();
    expect(list.users.map((u: { user_id: string }) => u.user_id)).toEqual(['u1']);
    expect(list.total_users).toBe(1);
    const overall = (await t.app.inject({ method: 'GET', url: '/api/v1/usage/overall?days=30&top_users=0', headers: bearer(USER_KEY) })).json();
    const mine = records.filter((r) => r.userId === 'u1' && r.createdAtMs >= Date.parse(overall.from));
    expect(overall.by_user).toEqual({ '(others)': { ...breakdownOf(mine), users: 1 } });
    expect(overall.total_cost_usd_exact).toBe(expectedTotals(mine).total_cost_usd_exact);
  });
}

/**
 * USAGE_RAW_RETENTION_DAYS: raw rows of whole hours past the limit are deleted, the rollups stay,
 * and windows reaching past the limit are answered from them, exactly, from the hour's start.
 */
function retentionSuite(env: () => Record<string, string>) {
  let t: TestApp;
  let keysDir: string;
  const now = Date.now();
  const records = generate(15, 2000, now);
  const count = async (sql: string) => Number((await t.app.get(DataSource).query(sql))[0].n);

  beforeAll(async () => {
    keysDir = mkdtempSync(join(tmpdir(), 'asa-rollup-keys-'));
    const keys = writeApiKeysFile(keysDir, [{ name: 'admin', key: ADMIN_KEY }]);
    t = await createTestApp({ env: { ...env(), API_KEYS_FILE: keys, USAGE_RAW_RETENTION_DAYS: '4', USAGE_RETENTION_INTERVAL_MS: '3600000' } });
    await recordAll(t.app, records);
  });
  afterAll(async () => {
    await t?.close();
    rmSync(keysDir, { recursive: true, force: true });
  });

  it('deletes old raw rows in batches, keeps the rollups, and windows stay exact (whole hours past the limit)', async () => {
    const retention = t.app.get(UsageRetentionService);
    // The job ran at start and holds the lease: another replica's tick does nothing meanwhile.
    await waitFor('the retention lease', async () => (await t.app.get(JobLeaseService).holder(RETENTION_LEASE))?.owner === t.app.get(JobLeaseService).owner);
    const otherReplica = new JobLeaseService(t.app.get(DataSource));
    expect(await otherReplica.acquire(RETENTION_LEASE, 60_000)).toBe(false);
    const result = await retention.purge();
    const horizon = Date.parse(result.horizon!);
    expect(horizon % HOUR_MS).toBe(0);
    const old = records.filter((r) => r.createdAtMs < horizon).length;
    expect(old).toBeGreaterThan(1000); // more than one batch
    expect(result.deleted).toBe(old);
    expect(await count('SELECT COUNT(*) AS n FROM llm_usage')).toBe(records.length - old);
    expect(await count(`SELECT COUNT(*) AS n FROM llm_usage WHERE created_at_ms < ${horizon}`)).toBe(0);
    for (const table of ['llm_usage_hourly', 'llm_usage_daily_model', 'llm_usage_daily_user', 'llm_usage_weekly_user']) {
      expect(await count(`SELECT SUM(requests) AS n FROM ${table}`)).toBe(records.length);
    }

    // A window past the limit starts at its first hour's start (answered whole from the rollup).
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/usage/overall?days=10', headers: bearer(ADMIN_KEY) });
    expect(Date.parse(res.json().from) % HOUR_MS).toBe(0);
    await expectWindowsExact(t, records, 5, 10);

    // Task usage and a rebuild keep what the raw rows no longer hold.
    await rebuildRollups(t.app.get(DataSource), 4);
    for (const table of ['llm_usage_hourly', 'llm_usage_daily_model', 'llm_usage_daily_user', 'llm_usage_weekly_user', 'llm_usage_task_totals', 'llm_usage_task_summary']) {
      const withTask = table.startsWith('llm_usage_task_') ? records.filter((r) => r.taskId !== null) : records;
      expect(await count(`SELECT SUM(requests) AS n FROM ${table}`)).toBe(withTask.length);
    }
    await expectWindowsExact(t, records, 6, 6);
    expect((await retention.purge()).deleted).toBe(0);
  });
}

describe('usage rollups (SQLite)', () => {
  describe('rollups', () => rollupSuite(() => ({})));
  describe('retention', () => retentionSuite(() => ({})));
});

describePostgres('usage rollups', () => {
  let db: ScratchDatabase;
  let db2: ScratchDatabase;
  beforeAll(async () => {
    db = await createScratchPostgres();
    db2 = await createScratchPostgres();
  });
  afterAll(async () => {
    await db?.drop();
    await db2?.drop();
  });
  describe('rollups', () => rollupSuite(() => ({ DATABASE_URL: db.url })));
  describe('retention', () => retentionSuite(() => ({ DATABASE_URL: db2.url })));
});
