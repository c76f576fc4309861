import { parse } from 'csv-parse/sync';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScheduledExportsService } from '../src/modules/billing/scheduled-exports.service';
import type { UsageRecord } from '../src/plugins/sdk';
import { bearer, writeApiKeysFile } from './support/api-keys';
import { createTestApp, TestApp } from './support/create-app';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';
import { DAY_MS, recordAll, usageRecord } from './support/usage-records';

const ADMIN = 'admin-key-billing-0001';
const ALICE = 'alice-key-billing-0001';
const HOUR_MS = 3_600_000;

/** Sum of a column of exact 9-decimal USD strings, as nano-dollars (no float anywhere). */
const sumUsd = (cells: string[]) => cells.reduce((acc, c) => acc + BigInt(c.replace('.', '')), 0n);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const rowsOf = (csv: string) => parse(csv, { columns: true }) as Record<string, string>[];

const record = (t: TestApp, records: UsageRecord[]) => recordAll(t.app, records);

/**
 * Billing exports through the real app and database: the CSV reconciles to /usage/overall to the
 * nano-dollar, re-runs are byte-identical, late data makes a new version, user keys see only their rows.
 */
function billingSuite(env: () => Record<string, string>) {
  let t: TestApp;
  let keysDir: string;
  const now = Date.now();
  // Costs use every nano-dollar digit; unpriced and failed calls included; user ids and models a
  // spreadsheet would run as formulas.
  const records: UsageRecord[] = [
    usageRecord({ userId: 'alice', requestedModel: 'gpt-4o', costNanos: 123_456_789, cachedInputTokens: 7, createdAtMs: now - 2 * DAY_MS }),
    usageRecord({ userId: 'alice', requestedModel: 'gpt-4o', costNanos: 876_543_211, reasoningTokens: 9, createdAtMs: now - 30 * HOUR_MS }),
    usageRecord({ userId: 'alice', requestedModel: 'o3', costNanos: null, unpriced: true, createdAtMs: now - 20 * HOUR_MS }),
    usageRecord({ userId: 'bob', requestedModel: '=HYPERLINK("http://x","y")', costNanos: 1, cacheWriteTokens: 3, createdAtMs: now - 10 * HOUR_MS }),
    usageRecord({ userId: '+bob', requestedModel: '@SUM(A1)', costNanos: 999_999_999_999, createdAtMs: now - 5 * HOUR_MS }),
    usageRecord({ userId: null, requestedModel: '-2+3', costNanos: 42, status: 'error', errorType: 'http_500', createdAtMs: now - 2 * HOUR_MS }),
    // Outside the exported period (and outside overall?days=3).
    usageRecord({ userId: 'alice', requestedModel: 'gpt-4o', costNanos: 5_000_000_000, createdAtMs: now - 4 * DAY_MS }),
  ];
  const from = new Date(now - 3 * DAY_MS).toISOString();
  const to = new Date(now - HOUR_MS).toISOString();
  const admin = (method: 'GET' | 'POST', url: string, payload?: object) => t.app.inject({ method, url, payload, headers: bearer(ADMIN) });
  const asAlice = (method: 'GET' | 'POST', url: string, payload?: object) => t.app.inject({ method, url, payload, headers: bearer(ALICE) });

  beforeAll(async () => {
    keysDir = mkdtempSync(join(tmpdir(), 'asa-billing-keys-'));
    const keys = writeApiKeysFile(keysDir, [{ name: 'admin', key: ADMIN }, { name: 'alice', key: ALICE, userId: 'alice' }]);
    t = await createTestApp({ env: { ...env(), API_KEYS_FILE: keys, BILLING_DAILY_CRON: '', BILLING_MONTHLY_CRON: '' } });
    await record(t, records);
  });
  afterAll(async () => {
    await t?.close();
    rmSync(keysDir, { recursive: true, force: true });
  });

  let v1: { id: string; sha256: string; file_name: string };

  it('writes a CSV whose cost_usd column sums exactly to total_cost_usd_exact of /usage/overall', async () => {
    const res = await admin('POST', '/api/v1/billing/exports', { from, to, group_by: ['user', 'model'] });
    expect(res.statusCode).toBe(201);
    v1 = res.json();
    expect(res.json()).toMatchObject({ kind: 'custom', version: 1, status: 'current', rows: 5, new_version: true });
    expect(res.json().destinations).toEqual([expect.objectContaining({ destination: 'local', status: 'delivered' })]);

    const file = await admin('GET', `/api/v1/billing/exports/${v1.id}/download`);
    expect(file.statusCode).toBe(200);
    expect(file.headers['content-type']).toMatch(/^text\/csv/);
    expect(file.headers['content-disposition']).toBe(`attachment; filename="${v1.file_name}"`);
    expect(sha256(file.rawPayload)).toBe(v1.sha256);
    const text = file.rawPayload.toString('utf8');
    expect(text.split('\r\n')[0]).toBe(
      'period_start,period_end,user_id,model,requests,input_tokens,cached_input_tokens,cache_write_tokens,output_tokens,reasoning_tokens,unpriced_requests,cost_usd,currency',
    );
    const rows = rowsOf(text);
    // Overall over the last 3 days holds exactly the same calls as the exported period.
    const overall = (await admin('GET', '/api/v1/usage/overall?days=3')).json();
    expect(sumUsd(rows.map((r) => r.cost_usd))).toBe(BigInt(overall.total_cost_usd_exact.replace('.', '')));
    expect(overall.total_cost_usd_exact).toBe('1001.000000042');
    expect(res.json().totals.cost_usd).toBe(overall.total_cost_usd_exact);
    expect(rows.reduce((n, r) => n + Number(r.requests), 0)).toBe(overall.total_requests);
    expect(rows.find((r) => r.user_id === 'alice' && r.model === 'o3')).toMatchObject({ unpriced_requests: '1', cost_usd: '0.000000000', currency: 'USD' });
    // Stable order: by the group cells in code-unit order, the user-less row first.
    expect(rows.map((r) => [r.user_id, r.model])).toEqual([
      ['', "'-2+3"],
      ["'+bob", "'@SUM(A1)"],
      ['alice', 'gpt-4o'],
      ['alice', 'o3'],
      ['bob', `'=HYPERLINK("http://x","y")`],
    ]);
  });

  it('escapes cells a spreadsheet would run as formulas', async () => {
    const text = (await admin('GET', `/api/v1/billing/exports/${v1.id}/download`)).rawPayload.toString('utf8');
    for (const line of text.split('\r\n').slice(1)) {
      for (const cell of line.split(',')) expect(cell.replace(/^"/, '')).not.toMatch(/^[=+@-]/);
    }
    expect(text).toContain(`"'=HYPERLINK(""http://x"",""y"")"`);
  });

  it('re-running the period gives the same bytes and no new version', async () => {
    const again = await admin('POST', '/api/v1/billing/exports', { from, to, group_by: 'user,model' });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ id: v1.id, version: 1, sha256: v1.sha256, new_version: false });
    const list = (await admin('GET', '/api/v1/billing/exports')).json().exports;
    expect(list).toHaveLength(1);
    expect(readdirSync(join(t.dir, 'exports')).filter((f) => !f.startsWith('.'))).toEqual([v1.file_name]);
  });

  it('late data makes v2 and marks v1 superseded; v1 stays as it was', async () => {
    await record(t, [usageRecord({ userId: 'bob', requestedModel: 'gpt-4o', costNanos: 3, createdAtMs: now - 6 * HOUR_MS })]);
    const res = await admin('POST', '/api/v1/billing/exports', { from, to });
    expect(res.statusCode).toBe(201);
    const v2 = res.json();
    expect(v2).toMatchObject({ version: 2, status: 'current', rows: 6 });
    expect(v2.file_name).toBe(v1.file_name.replace('.v1.csv', '.v2.csv'));
    expect(sumUsd(rowsOf((await admin('GET', `/api/v1/billing/exports/${v2.id}/download`)).rawPayload.toString()).map((r) => r.cost_usd))).toBe(1_001_000_000_045n);
    const old = (await admin('GET', `/api/v1/billing/exports/${v1.id}`)).json();
    expect(old).toMatchObject({ status: 'superseded', superseded_by: v2.id });
    expect(sha256(readFileSync(join(t.dir, 'exports', v1.file_name)))).toBe(v1.sha256);
  });

  it('a user key exports, lists and downloads only its own rows', async () => {
    const res = await asAlice('POST', '/api/v1/billing/exports', { from, to });
    expect(res.statusCode).toBe(201);
    expect(res.json().user_id).toBe('alice');
    const rows = rowsOf((await asAlice('GET', `/api/v1/billing/exports/${res.json().id}/download`)).rawPayload.toString());
    expect(rows.map((r) => r.user_id)).toEqual(['alice', 'alice']);
    expect(sumUsd(rows.map((r) => r.cost_usd))).toBe(1_000_000_000n);
    const list = (await asAlice('GET', '/api/v1/billing/exports')).json().exports;
    expect(list.map((e: { user_id: string }) => e.user_id)).toEqual(['alice']);
    expect((await asAlice('GET', `/api/v1/billing/exports/${v1.id}/download`)).statusCode).toBe(404);

    const raw = await asAlice('GET', `/api/v1/usage/records.csv?from=${encodeURIComponent(from)}`);
    expect(raw.statusCode).toBe(200);
    expect(new Set(rowsOf(raw.payload).map((r) => r.user_id))).toEqual(new Set(['alice']));
    expect((await asAlice('GET', '/api/v1/usage/records.csv?user_id=bob')).statusCode).toBe(403);
  });

  it('streams raw records as CSV, oldest first, with exact costs', async () => {
    const res = await admin('GET', `/api/v1/usage/records.csv?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    const rows = rowsOf(res.payload);
    expect(rows).toHaveLength(7);
    expect(rows.map((r) => Date.parse(r.created_at))).toEqual([...rows.map((r) => Date.parse(r.created_at))].sort((a, b) => a - b));
    expect(sumUsd(rows.map((r) => r.cost_usd || '0.000000000'))).toBe(1_001_000_000_045n);
    expect(rows.find((r) => r.requested_model === 'o3')).toMatchObject({ cost_usd: '', unpriced: 'true' });
    const bobOnly = rowsOf((await admin('GET', '/api/v1/usage/records.csv?user_id=bob&model=gpt-4o')).payload);
    expect(bobOnly.map((r) => r.cost_usd)).toEqual(['0.000000003']);
  });

  it.each([
    [{ from: to, to: from }, /^to must be after from/],
    [{ from: '2026-13-45', to }, /^from must be an ISO 8601 date/],
    [{ from, to: 'yesterday' }, /^to must be an ISO 8601 date/],
    [{ from: '2026-11-01T00:00:00+25:00', to: '2026-12-01' }, /^from must be an ISO 8601 date/],
    [{ from, to, group_by: ['user', 'planet'] }, /group_by must be a list of: user, model, task, day/],
    [{ from: '2020-01-01', to: '2026-01-01' }, /^to must be at most 366 days after from/],
    [{ to }, /from must be/],
  ])('answers 400 naming the field for %j', async (body, message) => {
    const res = await admin('POST', '/api/v1/billing/exports', body);
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(message);
  });

  it('lists exports a page at a time, each once, newest first; a user key pages through its own only', async () => {
    // A few more periods, so there is more than one page.
    for (let d = 5; d <= 8; d++) {
      const day = new Date(now - d * DAY_MS).toISOString().slice(0, 10);
      expect((await admin('POST', '/api/v1/billing/exports', { from: day, to: new Date(Date.parse(day) + DAY_MS).toISOString().slice(0, 10) })).statusCode).toBe(201);
    }
    const all = (await admin('GET', '/api/v1/billing/exports?limit=500')).json();
    expect(all.next_cursor).toBeNull();
    const pages: { id: string; created_at: string }[][] = [];
    let cursor: string | null = null;
    do {
      const res = await admin('GET', `/api/v1/billing/exports?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.statusCode, res.body).toBe(200);
      pages.push(res.json().exports);
      cursor = res.json().next_cursor;
    } while (cursor !== null && pages.length < 50);
    expect(pages.flat().map((e) => e.id)).toEqual(all.exports.map((e: { id: string }) => e.id));
    expect(pages.flat().length).toBeGreaterThan(4);
    expect(pages.every((p) => p.length <= 2)).toBe(true);

    const mine = (await asAlice('GET', '/api/v1/billing/exports?limit=1')).json();
    expect(mine.exports.map((e: { user_id: string }) => e.user_id)).toEqual(['alice']);
    if (mine.next_cursor) expect((await asAlice('GET', `/api/v1/billing/exports?cursor=${mine.next_cursor}`)).json().exports.every((e: { user_id: string }) => e.user_id === 'alice')).toBe(true);

    for (const [url, message] of [
      ['/api/v1/billing/exports?cursor=bm9wZQ', /^cursor is not valid/],
      ['/api/v1/billing/exports?limit=0x10', /^limit must be an integer from 1 to 500/],
      ['/api/v1/billing/exports?limit=501', /^limit must not be greater than 500/],
    ] as const) {
      const res = await admin('GET', url);
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().message).toMatch(message);
    }
  });

  it('answers 400 for a bad records.csv range', async () => {
    const res = await admin('GET', '/api/v1/usage/records.csv?from=2026-02-30');
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/^from must be an ISO 8601 date/);
  });
}

describe('billing exports (SQLite)', () => billingSuite(() => ({})));

describePostgres('billing exports', () => {
  let db: ScratchDatabase;
  beforeAll(async () => (db = await createScratchPostgres()));
  afterAll(() => db?.drop());
  billingSuite(() => ({ DATABASE_URL: db.url }));
});

describe('billing exports and raw usage retention', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'asa-billing-retention-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a period retention has reached is refused, and its earlier export stays current and unchanged', async () => {
    const env = { DATABASE_URL: `sqlite:${join(dir, 'asa.db')}`, BILLING_EXPORT_DIR: join(dir, 'exports'), BILLING_DAILY_CRON: '', BILLING_MONTHLY_CRON: '' };
    const day = new Date(Date.now() - 6 * DAY_MS).toISOString().slice(0, 10);
    const next = new Date(Date.parse(day) + DAY_MS).toISOString().slice(0, 10);
    const recent = new Date(Date.now() - DAY_MS).toISOString().slice(0, 10);
    const first = await createTestApp({ env });
    let v1: { id: string; sha256: string; file_name: string };
    try {
      await record(first, [usageRecord({ userId: 'old', costNanos: 7, createdAtMs: Date.parse(day) + 5 * HOUR_MS })]);
      const res = await first.app.inject({ method: 'POST', url: '/api/v1/billing/exports', payload: { from: day, to: next } });
      expect(res.statusCode, res.body).toBe(201);
      v1 = res.json();
    } finally {
      await first.close();
    }
    // Restarted with a 3-day retention: the start's retention run removes that day's raw rows.
    const second = await createTestApp({ env: { ...env, USAGE_RAW_RETENTION_DAYS: '3' } });
    try {
      const again = await second.app.inject({ method: 'POST', url: '/api/v1/billing/exports', payload: { from: day, to: next } });
      expect(again.statusCode, again.body).toBe(400);
      expect(again.json()).toMatchObject({ code: 'BILLING_PERIOD_PAST_RETENTION' });
      expect(again.json().message).toMatch(/^from \(.*\) is before .*USAGE_RAW_RETENTION_DAYS=3 days/);
      const kept = (await second.app.inject({ method: 'GET', url: `/api/v1/billing/exports/${v1.id}` })).json();
      expect(kept).toMatchObject({ status: 'current', version: 1, sha256: v1.sha256 });
      expect(sha256(readFileSync(join(dir, 'exports', v1.file_name)))).toBe(v1.sha256);
      // Periods inside the retained days still export.
      const ok = await second.app.inject({ method: 'POST', url: '/api/v1/billing/exports', payload: { from: recent, to: new Date(Date.parse(recent) + DAY_MS).toISOString().slice(0, 10) } });
      expect(ok.statusCode, ok.body).toBe(201);
    } finally {
      await second.close();
    }
  });
});

describe('BILLING_TIMEZONE cuts days at local midnight', () => {
  let t: TestApp;
  // 2026-11-25 00:00 in Los Angeles (PST, UTC-8) is 08:00 UTC.
  const beforeMidnight = usageRecord({ userId: 'la', costNanos: 100, createdAtMs: Date.parse('2026-11-25T07:59:59.999Z') });
  const afterMidnight = usageRecord({ userId: 'la', costNanos: 20, createdAtMs: Date.parse('2026-11-25T08:00:00.000Z') });
  const nextDayEnd = usageRecord({ userId: 'la', costNanos: 3, createdAtMs: Date.parse('2026-11-26T07:59:59.999Z') });

  beforeAll(async () => {
    t = await createTestApp({ env: { BILLING_TIMEZONE: 'America/Los_Angeles', BILLING_DAILY_CRON: '', BILLING_MONTHLY_CRON: '' } });
    await record(t, [beforeMidnight, afterMidnight, nextDayEnd]);
  });
  afterAll(() => t?.close());

  it('the scheduled daily export of 25 November holds the calls of the local 25th only', async () => {
    const run = await t.app.get(ScheduledExportsService).runScheduled('daily', Date.parse('2026-11-26T17:00:00Z'));
    expect(run.ran).toBe(true);
    const exp = run.outcomes[0].export;
    expect(exp.fileName).toBe('usage-daily-2026-11-25.v1.csv');
    const rows = rowsOf(readFileSync(join(t.dir, 'exports', exp.fileName), 'utf8'));
    expect(rows).toEqual([
      expect.objectContaining({ period_start: '2026-11-25T00:00:00-08:00', period_end: '2026-11-26T00:00:00-08:00', user_id: 'la', requests: '2', cost_usd: '0.000000023' }),
    ]);
  });

  it('the same day asked for by date through the API is the same export (no new version)', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/billing/exports', payload: { from: '2026-11-25', to: '2026-11-26' } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ kind: 'daily', version: 1, file_name: 'usage-daily-2026-11-25.v1.csv' });
  });

  it('a later scheduled run finds late data for an exported day: v2, and v1 superseded', async () => {
    await record(t, [usageRecord({ userId: 'la', costNanos: 1_000, createdAtMs: Date.parse('2026-11-25T20:00:00Z') })]);
    const run = await t.app.get(ScheduledExportsService).runScheduled('daily', Date.parse('2026-11-27T17:00:00Z'));
    const files = run.outcomes.map((o) => [o.export.fileName, o.created]);
    expect(files).toEqual([
      ['usage-daily-2026-11-26.v1.csv', true],
      ['usage-daily-2026-11-25.v2.csv', true],
    ]);
    const list = (await t.app.inject({ method: 'GET', url: '/api/v1/billing/exports' })).json().exports;
    expect(list.find((e: { file_name: string }) => e.file_name === 'usage-daily-2026-11-25.v1.csv')).toMatchObject({ status: 'superseded' });
    expect(list.find((e: { file_name: string }) => e.file_name === 'usage-daily-2026-11-25.v2.csv')).toMatchObject({ status: 'current', totals: { cost_usd: '0.000001023' } });
  });

  it('group_by=day splits at local midnight', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/billing/exports', payload: { from: '2026-11-24', to: '2026-11-26', group_by: ['day'] } });
    expect(res.statusCode).toBe(201);
    const rows = rowsOf((await t.app.inject({ method: 'GET', url: `/api/v1/billing/exports/${res.json().id}/download` })).payload);
    expect(rows.map((r) => [r.day, r.requests, r.cost_usd])).toEqual([
      ['2026-11-24', '1', '0.000000100'],
      ['2026-11-25', '3', '0.000001023'],
    ]);
  });
});

describePostgres('scheduled billing export across two app instances', () => {
  let db: ScratchDatabase;
  const apps: TestApp[] = [];
  beforeAll(async () => {
    db = await createScratchPostgres();
  });
  afterAll(async () => {
    for (const a of apps) await a.close();
    await db?.drop();
  });

  it('runs each tick once on one PostgreSQL', async () => {
    // Every second, so both instances tick several times within the test.
    const env = { DATABASE_URL: db.url, BILLING_DAILY_CRON: '* * * * * *', BILLING_MONTHLY_CRON: '' };
    apps.push(await createTestApp({ env }));
    apps.push(await createTestApp({ env }));
    await record(apps[0], [usageRecord({ userId: 'u1', costNanos: 7, createdAtMs: Date.now() - DAY_MS })]);
    const deadline = Date.now() + 20_000;
    const count = async () => Number((await apps[0].app.inject({ method: 'GET', url: '/api/v1/billing/exports' })).json().exports.length);
    while ((await count()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 3_000)); // several more ticks on both instances
    const list = (await apps[1].app.inject({ method: 'GET', url: '/api/v1/billing/exports' })).json().exports;
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ kind: 'daily', version: 1, created_by: 'schedule' });
    const services = apps.map((a) => a.app.get(ScheduledExportsService));
    // Both instances ticked several times; exactly one tick of one instance exported the day.
    for (const s of services) expect(s.ticksRun + s.ticksSkipped).toBeGreaterThanOrEqual(2);
    expect(services.reduce((n, s) => n + s.ticksRun, 0)).toBe(1);
  });
});

describe('export destinations', () => {
  let pluginDir: string;
  beforeAll(() => {
    pluginDir = mkdtempSync(join(tmpdir(), 'asa-billing-dest-'));
    // A destination that copies the file (as an upload would) and one that always fails.
    writeFileSync(
      join(pluginDir, 'copy-destination.js'),
      `const fs = require('node:fs'); const path = require('node:path');
exports.createExportDestination = () => ({
  name: 'copy',
  async deliver(file) {
    const target = path.join(${JSON.stringify(pluginDir)}, 'copies', file.fileName);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(file.path, target);
    return { location: target, detail: { sha256: file.sha256, rows: file.rows } };
  },
});\n`,
    );
    writeFileSync(join(pluginDir, 'broken-destination.js'), `exports.createExportDestination = () => ({ name: 'broken', async deliver() { throw new Error('bucket unreachable'); } });\n`);
  });
  afterAll(() => rmSync(pluginDir, { recursive: true, force: true }));

  it('hands each new version to every destination and stores each result; a failing one does not fail the export', async () => {
    const t = await createTestApp({
      env: {
        BILLING_DAILY_CRON: '',
        BILLING_MONTHLY_CRON: '',
        BILLING_EXPORT_DESTINATION_PLUGINS: `${join(pluginDir, 'copy-destination.js')}, ${join(pluginDir, 'broken-destination.js')}`,
      },
    });
    try {
      await record(t, [usageRecord({ userId: 'd', costNanos: 5, createdAtMs: Date.parse('2026-11-25T12:00:00Z') })]);
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/billing/exports', payload: { from: '2026-11-25', to: '2026-11-26' } });
      expect(res.statusCode).toBe(201);
      const exp = res.json();
      const copy = join(pluginDir, 'copies', exp.file_name);
      expect(exp.destinations).toEqual([
        expect.objectContaining({ destination: 'local', status: 'delivered', location: join(t.dir, 'exports', exp.file_name) }),
        expect.objectContaining({ destination: 'copy', status: 'delivered', location: copy, detail: { sha256: exp.sha256, rows: 1 } }),
        expect.objectContaining({ destination: 'broken', status: 'failed', error: 'bucket unreachable' }),
      ]);
      expect(sha256(readFileSync(copy))).toBe(exp.sha256);
      const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).payload;
      expect(metrics).toContain('billing_export_deliveries_total{destination="broken",result="failed"} 1');
      expect(metrics).toContain('billing_export_versions_total{kind="daily"} 1');
      // The stored results are what the list shows too.
      expect((await t.app.inject({ method: 'GET', url: `/api/v1/billing/exports/${exp.id}` })).json().destinations).toEqual(exp.destinations);
    } finally {
      await t.close();
    }
  });

  it('a destination plugin that cannot be loaded stops the start, naming it', async () => {
    await expect(createTestApp({ env: { BILLING_EXPORT_DESTINATION_PLUGINS: './no/such/destination.js' } })).rejects.toThrow(
      /Export destination plugin "\.\/no\/such\/destination\.js" could not be loaded/,
    );
  });

  it('a bad schedule stops the start, naming the variable', async () => {
    await expect(createTestApp({ env: { BILLING_DAILY_CRON: '61 * * * *' } })).rejects.toThrow(/BILLING_DAILY_CRON must be a cron expression/);
  });
});

/** Keyset paging of records.csv: calls sharing a millisecond across page boundaries, none lost or repeated. */
function recordsPagingSuite(env: () => Record<string, string>) {
  let t: TestApp;
  const base = Date.parse('2026-10-01T00:00:00Z');
  // 4,500 calls (more than two pages of 2,000), seven per millisecond.
  const records = Array.from({ length: 4_500 }, (_, i) => usageRecord({ userId: `p${i % 3}`, costNanos: i, createdAtMs: base + Math.floor(i / 7) }));
  beforeAll(async () => {
    t = await createTestApp({ env: { ...env(), BILLING_DAILY_CRON: '', BILLING_MONTHLY_CRON: '' } });
    await record(t, records);
  });
  afterAll(() => t?.close());

  it('returns every record once, in (created_at, id) order', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/usage/records.csv?from=2026-10-01&to=2026-10-02' });
    expect(res.statusCode).toBe(200);
    const rows = rowsOf(res.payload);
    expect(rows).toHaveLength(records.length);
    expect(new Set(rows.map((r) => r.id)).size).toBe(records.length);
    expect(sumUsd(rows.map((r) => r.cost_usd))).toBe(BigInt((4_499 * 4_500) / 2));
    const keys = rows.map((r) => [Date.parse(r.created_at), r.id] as const);
    for (let i = 1; i < keys.length; i++) expect(keys[i][0] > keys[i - 1][0] || (keys[i][0] === keys[i - 1][0] && keys[i][1] > keys[i - 1][1])).toBe(true);
  });
}

describe('records.csv paging (SQLite)', () => recordsPagingSuite(() => ({})));

describePostgres('records.csv paging', () => {
  let db: ScratchDatabase;
  beforeAll(async () => (db = await createScratchPostgres()));
  afterAll(() => db?.drop());
  recordsPagingSuite(() => ({ DATABASE_URL: db.url }));
});
