import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LlmClientFactory } from '../src/modules/llm/llm-client.factory';
import { FakeOpenAi } from './fixtures/fake-openai';
import { createTestApp, TestApp } from './support/create-app';
import { ADMIN_KEY, ALICE_KEY, bearer, writeApiKeys } from './support/tasks';

const ADMIN = bearer(ADMIN_KEY);
const ALICE = bearer(ALICE_KEY);

const FILE_RULES = {
  rules: [
    { id: 'alice-monthly', scope: { user_id: 'alice' }, limit_usd: '50', window: 'month', thresholds: [50, 80, 100], action: 'block' },
    { id: 'gpt4-daily', scope: { model: 'gpt-4o' }, limit_usd: 200, window: 'day', action: 'alert' },
  ],
};

/** Quota rules: the file, the admin API, validation, status and gauges. */
describe('quota rules', () => {
  let dir: string;
  let fake: FakeOpenAi;
  let t: TestApp;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'asa-quota-rules-'));
    writeFileSync(join(dir, 'quotas.json'), JSON.stringify(FILE_RULES));
    fake = await FakeOpenAi.start({ defaultReply: { content: 'ok', usage: { prompt_tokens: 1000, completion_tokens: 1000 } } });
    t = await createTestApp({
      env: {
        QUOTAS_FILE: join(dir, 'quotas.json'),
        API_KEYS_FILE: writeApiKeys(dir),
        OPENAI_BASE_URL: fake.baseUrl,
        OPENAI_API_KEY: 'sk-test',
        OPENAI_MAX_RETRIES: '0',
      },
    });
  });
  afterAll(async () => {
    await t?.close();
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (payload: unknown, headers = ADMIN) => t.app.inject({ method: 'POST', url: '/api/v1/quotas', payload: payload as object, headers });

  it('lists the file rules with "source": "file", limits kept exact', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/quotas', headers: ADMIN });
    expect(res.statusCode).toBe(200);
    expect(res.json().rules).toEqual([
      { id: 'alice-monthly', scope: { user_id: 'alice' }, limit_usd: '50', window: 'month', thresholds: [50, 80, 100], action: 'block', notify: null, source: 'file' },
      { id: 'gpt4-daily', scope: { model: 'gpt-4o' }, limit_usd: '200', window: 'day', thresholds: [50, 80, 100], action: 'alert', notify: null, source: 'file' },
    ]);
  });

  it('file rules are read-only through the API', async () => {
    const put = await t.app.inject({ method: 'PUT', url: '/api/v1/quotas/alice-monthly', headers: ADMIN, payload: { ...FILE_RULES.rules[0], limit_usd: '1' } });
    expect(put.statusCode).toBe(403);
    expect(put.json()).toMatchObject({ code: 'QUOTA_RULE_READ_ONLY', message: expect.stringContaining('quotas file') });
    const del = await t.app.inject({ method: 'DELETE', url: '/api/v1/quotas/alice-monthly', headers: ADMIN });
    expect(del.statusCode).toBe(403);
    const dup = await post({ ...FILE_RULES.rules[0], limit_usd: '1' });
    expect(dup.statusCode).toBe(409);
    expect(dup.json()).toMatchObject({ code: 'QUOTA_RULE_EXISTS', message: expect.stringContaining('read-only') });
    const list = await t.app.inject({ method: 'GET', url: '/api/v1/quotas/alice-monthly', headers: ADMIN });
    expect(list.json().limit_usd).toBe('50');
  });

  it('creates, reads, replaces and deletes a rule', async () => {
    const created = await post({ id: 'team-weekly', scope: {}, limit_usd: 12.5, limit_tokens: 1000000, window: { rolling_hours: 24 }, thresholds: [90, 10], action: 'alert', notify: [] });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json()).toEqual({
      id: 'team-weekly', scope: {}, limit_usd: '12.5', limit_tokens: 1000000, window: { rolling_hours: 24 }, thresholds: [10, 90], action: 'alert', notify: [], source: 'api',
    });
    expect((await post({ id: 'team-weekly', scope: {}, limit_usd: '1', window: 'day' })).statusCode).toBe(409);
    const put = await t.app.inject({ method: 'PUT', url: '/api/v1/quotas/team-weekly', headers: ADMIN, payload: { scope: {}, limit_usd: '0.000000001', window: 'week' } });
    expect(put.statusCode, put.body).toBe(200);
    expect(put.json()).toMatchObject({ id: 'team-weekly', limit_usd: '0.000000001', window: 'week', thresholds: [50, 80, 100], action: 'alert', notify: null });
    const renamed = await t.app.inject({ method: 'PUT', url: '/api/v1/quotas/team-weekly', headers: ADMIN, payload: { id: 'other', scope: {}, limit_usd: '1', window: 'week' } });
    expect(renamed.statusCode).toBe(400);
    expect((await t.app.inject({ method: 'DELETE', url: '/api/v1/quotas/team-weekly', headers: ADMIN })).statusCode).toBe(204);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/quotas/team-weekly', headers: ADMIN })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'DELETE', url: '/api/v1/quotas/team-weekly', headers: ADMIN })).statusCode).toBe(404);
  });

  const base = { id: 'bad', scope: {}, limit_usd: '1', window: 'day' };
  it.each([
    ['no scope', { id: 'bad', limit_usd: '1', window: 'day' }, /^scope is required: an object with any of user_id, model, task_id \(\{\} = every call\)/],
    ['a null scope', { ...base, scope: null }, /^scope is required/],
    ['a scope that is not an object', { ...base, scope: 'alice' }, /^scope must be an object/],
    ['unknown scope key', { ...base, scope: { region: 'eu' } }, /^scope\.region is not a scope key/],
    ['negative limit_usd', { ...base, limit_usd: '-5' }, /^limit_usd must not be negative/],
    ['negative limit_usd number', { ...base, limit_usd: -5 }, /^limit_usd must not be negative/],
    ['limit_usd past nano-dollars', { ...base, limit_usd: '0.0000000001' }, /^limit_usd has more than 9 decimals/],
    ['limit_usd not a number', { ...base, limit_usd: 'fifty' }, /^limit_usd must be a plain decimal such as "50"/],
    ['limit_usd in exponent form', { ...base, limit_usd: '1e3' }, /^limit_usd must be a plain decimal .*got "1e3"/],
    ['limit_usd with a unit', { ...base, limit_usd: '$50' }, /^limit_usd must be a plain decimal .*got "\$50"/],
    ['limit_usd an object', { ...base, limit_usd: { usd: 5 } }, /^limit_usd must be a decimal string or number/],
    ['negative limit_tokens', { ...base, limit_usd: undefined, limit_tokens: -1 }, /^limit_tokens must not be negative/],
    ['no limit', { id: 'bad', scope: {}, window: 'day' }, /^limit_usd or limit_tokens is required/],
    ['unknown notifier', { ...base, notify: ['pager'] }, /^notify names "pager", which is not a configured notifier/],
    ['bad window', { ...base, window: 'year' }, /^window must be "task", "day", "week", "month" or \{ "rolling_hours": N \}/],
    ['bad rolling window', { ...base, window: { rolling_hours: 0 } }, /^window\.rolling_hours must be a whole number of hours/],
    ['bad action', { ...base, action: 'shout' }, /^action must be "alert" or "block"/],
    ['bad thresholds', { ...base, thresholds: [50, -1] }, /^thresholds must hold whole percentages/],
    ['bad id', { ...base, id: 'no spaces please' }, /^id must be 1-64 letters/],
    ['unknown field', { ...base, limit: 5 }, /^limit is not a rule field/],
    ['task_id "*"', { ...base, scope: { task_id: '*' } }, /^scope\.task_id cannot be "\*"/],
  ])('a rule with %s gets a 400 naming the field', async (_name, payload, message) => {
    const res = await post(payload);
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json()).toMatchObject({ statusCode: 400, error: 'Bad Request', code: 'QUOTA_RULE_INVALID' });
    expect(res.json().message).toMatch(message);
  });

  it('a rule that is not a JSON object gets a 400 saying so', async () => {
    const res = await post([1, 2]);
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json()).toMatchObject({ statusCode: 400, code: 'REQUEST_BODY_NOT_OBJECT', message: 'the request body must be a JSON object ({ ... }), got an array' });
  });

  it('is admin-only, except the status (a user key sees only its own rules)', async () => {
    expect((await post({ id: 'mine', limit_usd: '1', window: 'day' }, ALICE)).statusCode).toBe(403);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/quotas', headers: ALICE })).statusCode).toBe(403);
    expect((await t.app.inject({ method: 'POST', url: '/api/v1/quotas/evaluate', headers: ALICE })).statusCode).toBe(403);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/quotas' })).statusCode).toBe(401);

    expect((await post({ id: 'each-user', scope: { user_id: '*' }, limit_usd: '1', window: 'day' })).statusCode).toBe(201);
    await t.app.get(LlmClientFactory).forUser('alice').chat({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });
    await t.app.get(LlmClientFactory).forUser('bob').chat({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] });

    const admin = (await t.app.inject({ method: 'GET', url: '/api/v1/quotas/status', headers: ADMIN })).json();
    const ids = admin.rules.map((r: { rule_id: string }) => r.rule_id);
    expect(ids).toEqual(['alice-monthly', 'gpt4-daily', 'each-user']);
    const eachUser = admin.rules.find((r: { rule_id: string }) => r.rule_id === 'each-user');
    expect(eachUser.scope_values.map((v: { scope: object }) => v.scope)).toEqual(expect.arrayContaining([{ user_id: 'alice' }, { user_id: 'bob' }]));
    const gpt4 = admin.rules.find((r: { rule_id: string }) => r.rule_id === 'gpt4-daily');
    // gpt-4o: 1000 input tokens and 1000 output tokens per call, two calls.
    expect(gpt4.scope_values).toHaveLength(1);
    expect(gpt4.scope_values[0].spend_usd).toMatch(/^0\.0\d{8}$/);
    expect(gpt4.scope_values[0].window.kind).toBe('day');
    expect(gpt4.limit_usd).toBe('200.000000000');

    const mine = (await t.app.inject({ method: 'GET', url: '/api/v1/quotas/status', headers: ALICE })).json();
    expect(mine.rules.map((r: { rule_id: string }) => r.rule_id)).toEqual(['alice-monthly', 'each-user']);
    for (const r of mine.rules) expect(r.scope_values.map((v: { scope: { user_id: string } }) => v.scope.user_id)).toEqual(['alice']);
  });

  it('exports quota_spend_usd and quota_limit_usd by rule, never by user for "*"', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/quotas/evaluate', headers: ADMIN });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ evaluated: true, rules: 3 });
    const metrics = (await t.app.inject({ method: 'GET', url: '/metrics', headers: ADMIN })).body;
    expect(metrics).toContain('quota_limit_usd{rule="alice-monthly",user_id="alice",model="",task_id=""} 50');
    expect(metrics).toMatch(/quota_spend_usd\{rule="gpt4-daily",user_id="",model="gpt-4o",task_id=""\} 0\.0\d+/);
    expect(metrics).toMatch(/quota_spend_usd\{rule="each-user",user_id="",model="",task_id=""\} 0\.0\d+/);
    expect(metrics).not.toMatch(/quota_spend_usd\{[^}]*user_id="bob"/);
  });
});

describe('quota rules file at start', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'asa-quota-file-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a bad rule stops the start, naming the rule and the field', async () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ rules: [FILE_RULES.rules[0], { id: 'broken', scope: { team: 'x' }, limit_usd: '1', window: 'day' }] }));
    await expect(createTestApp({ env: { QUOTAS_FILE: file } })).rejects.toThrow(`QUOTAS_FILE ${file}: rule "broken": scope.team is not a scope key`);
  });

  it('a named file that is missing stops the start; the default file may be missing', async () => {
    await expect(createTestApp({ env: { QUOTAS_FILE: join(dir, 'nope.json') } })).rejects.toThrow(/QUOTAS_FILE .*nope\.json does not exist/);
    const t = await createTestApp({ env: { QUOTAS_FILE: undefined } });
    try {
      const res = await t.app.inject({ method: 'GET', url: '/api/v1/quotas' });
      expect(res.statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('QUOTA_TIMEZONE must be an IANA zone', async () => {
    await expect(createTestApp({ env: { QUOTA_TIMEZONE: 'Mars/Olympus' } })).rejects.toThrow(/QUOTA_TIMEZONE="Mars\/Olympus": QUOTA_TIMEZONE must be an IANA time zone/);
  });
});
