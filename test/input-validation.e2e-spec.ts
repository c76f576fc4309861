import { TASK_AGENTS } from '../src/plugins/sdk';
import { MAX_JSON_DEPTH } from '../src/common/request-input';
import { createTestApp, TestApp } from './support/create-app';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';
import { isFinal, ScriptedAgent, waitForTask } from './support/tasks';

const SUBMIT = '/api/v1/task/submit';
const valid = {
  repo_url: 'https://github.com/example/repo',
  bug_description: 'quick',
  test_command: 'true',
  user_id: 'input-user',
  model: 'gpt-4o-mini',
};

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

/** The same cases on each database: what used to be a 500 (PostgreSQL) or a later agent_error (SQLite) is a 400 at the door. */
function inputSuite(env: () => Record<string, string>) {
  let t: TestApp;
  let taskId: string;
  const inject = (req: Parameters<TestApp['app']['inject']>[0]) => t.app.inject(req);
  const expect400 = async (req: Parameters<TestApp['app']['inject']>[0], names: string | RegExp) => {
    const res = await inject(req);
    const what = typeof req === 'string' ? req : `${req.method} ${req.url}`;
    expect(res.statusCode, `${what}: ${res.body}`).toBe(400);
    expect(res.json(), what).toMatchObject({ statusCode: 400, error: 'Bad Request' });
    expect(res.json().message, what).toMatch(names);
    return res.json();
  };
  const taskCount = async () => (await inject({ method: 'GET', url: '/api/v1/tasks?limit=100' })).json().tasks.length;

  beforeAll(async () => {
    const agent = new ScriptedAgent();
    t = await createTestApp({ env: env(), override: (b) => b.overrideProvider(TASK_AGENTS).useValue([agent]) });
    const res = await inject({ method: 'POST', url: SUBMIT, payload: valid });
    expect(res.statusCode).toBe(202);
    taskId = res.json().task_id;
    await waitForTask(t.app, taskId, isFinal);
  });
  afterAll(() => t?.close());

  it.each(['repo_url', 'bug_description', 'test_command', 'model', 'user_id'])('a NUL character in %s is a 400 naming it, and no task is made', async (field) => {
    const before = await taskCount();
    const body = await expect400(
      { method: 'POST', url: SUBMIT, payload: { ...valid, [field]: `abc\u0000def` } },
      new RegExp(`^${field} must not contain NUL characters`),
    );
    expect(body.code).toBe('REQUEST_NUL_CHARACTER');
    expect(await taskCount()).toBe(before);
  });

  it('names every field holding a NUL, keys and nested values included', async () => {
    const body = await expect400(
      { method: 'POST', url: SUBMIT, payload: { ...valid, bug_description: '\u0000', extra: { list: ['ok', 'x\u0000'] }, 'k\u0000': 1 } },
      /bug_description must not contain NUL/,
    );
    expect(body.message).toContain('extra.list[1] must not contain NUL');
    expect(body.message).toContain('k\\u0000 must not contain NUL');
  });

  it.each([
    ['/api/v1/tasks?user_id=a%00b', 'user_id'],
    ['/api/v1/tasks?cursor=%00', 'cursor'],
    ['/api/v1/tasks?status=queued%00', 'status'],
    ['/api/v1/usage/metrics/tasks?user_id=%00', 'user_id'],
    ['/api/v1/usage/user/a%00b', 'user_id'],
    ['/api/v1/usage/task/a%00b', 'task_id'],
    ['/api/v1/task/%00', 'task_id'],
    ['/api/v1/usage/overall?days=7%00', 'days'],
  ])('a NUL character in GET %s is a 400 naming %s', async (url, name) => {
    await expect400({ method: 'GET', url }, new RegExp(`^${name} must not contain NUL characters`));
  });

  it(`JSON nested 2,000 deep (or ${MAX_JSON_DEPTH + 1}) is a 400 naming the problem; ${MAX_JSON_DEPTH} deep reaches validation`, async () => {
    for (const depth of [2_000, MAX_JSON_DEPTH + 1]) {
      const payload = `{"bug_description":${nested(depth - 1)}}`;
      const body = await expect400({ method: 'POST', url: SUBMIT, payload, headers: { 'content-type': 'application/json' } }, /nested more than 64 levels/);
      expect(body.code).toBe('REQUEST_JSON_TOO_DEEP');
    }
    const deepObject = '{"a":'.repeat(2_000) + '1' + '}'.repeat(2_000);
    await expect400({ method: 'POST', url: SUBMIT, payload: deepObject, headers: { 'content-type': 'application/json' } }, /nested more than 64 levels/);
    // Exactly the limit: parsed, then refused by validation as the wrong kind of value.
    await expect400(
      { method: 'POST', url: SUBMIT, payload: `{"bug_description":${nested(MAX_JSON_DEPTH - 1)}}`, headers: { 'content-type': 'application/json' } },
      /bug_description must be a string/,
    );
    // Brackets inside a string are text, not nesting.
    const res = await inject({ method: 'POST', url: SUBMIT, payload: { ...valid, bug_description: `quick ${nested(3_000)} "{[` } });
    expect(res.statusCode).toBe(202);
  });

  const badNumbers = ['0x10', '1e2', '0b11', '0o7', '%207', '7%20', '+7', '07', '7.', '.5', 'Infinity'];
  it.each([
    ...badNumbers.map((v) => [`/api/v1/usage/overall?days=${v}`, 'days']),
    ...['0x10', '1e1', '%202'].map((v) => [`/api/v1/tasks?limit=${v}`, 'limit']),
    ...['0x10', '1e2', '%201', '0b1'].map((v) => [`/api/v1/usage/task/TASK/limits?max_cost_usd=${v}`, 'max_cost_usd']),
    ['/api/v1/usage/user/input-user?days=0x10', 'days'],
    ['/api/v1/usage/timeseries?days=1e1', 'days'],
    ['/api/v1/usage/metrics/tasks?days=0x10', 'days'],
  ])('GET %s is a 400 naming %s (only plain decimal digits are numbers)', async (url, name) => {
    const body = await expect400({ method: 'GET', url: url.replace('TASK', taskId) }, new RegExp(`^${name} must be`));
    expect(body.message).toMatch(/written in decimal digits/);
  });

  it.each([
    ['/api/v1/usage/overall?days=', 'days'],
    ['/api/v1/usage/overall?days', 'days'],
    ['/api/v1/tasks?limit=', 'limit'],
    ['/api/v1/tasks?user_id=', 'user_id'],
    ['/api/v1/usage/task/TASK/limits?max_cost_usd=', 'max_cost_usd'],
    ['/api/v1/usage/metrics/tasks?days=7&user_id=', 'user_id'],
  ])('an empty value in GET %s is a 400 naming %s', async (url, name) => {
    const body = await expect400({ method: 'GET', url: url.replace('TASK', taskId) }, new RegExp(`^${name} must not be empty`));
    expect(body.code).toBe('REQUEST_EMPTY_PARAMETER');
  });

  it.each([
    ['[1, 2]', /^the request body must be a JSON object \(\{ \.\.\. \}\), got an array$/, 'REQUEST_BODY_NOT_OBJECT'],
    ['null', /got null$/, 'REQUEST_BODY_NOT_OBJECT'],
    ['"a string"', /got a string$/, 'REQUEST_BODY_NOT_OBJECT'],
    ['42', /got a number$/, 'REQUEST_BODY_NOT_OBJECT'],
    ['{"__proto__": {"admin": true}, "repo_url": "x"}', /must not contain a "__proto__" key/, 'REQUEST_FORBIDDEN_KEY'],
    ['{"constructor": {"prototype": {"admin": true}}}', /must not contain .*"constructor" key holding "prototype"/, 'REQUEST_FORBIDDEN_KEY'],
    ['{"repo_url": "x",}', /^the body is not valid JSON: .*(position|JSON)/, undefined],
  ])('a body of %s is a 400 that says what is wrong with it, and no task is made', async (payload, message, code) => {
    const before = await taskCount();
    const body = await expect400({ method: 'POST', url: SUBMIT, payload, headers: { 'content-type': 'application/json' } }, message);
    expect(body.code).toBe(code);
    expect(await taskCount()).toBe(before);
  });

  it('a query parameter without a name is a 400 that says so', async () => {
    const body = await expect400({ method: 'GET', url: '/api/v1/usage/overall?=1' }, /^the query string has a parameter without a name \(such as "\?=1"\)/);
    expect(body.code).toBe('REQUEST_UNNAMED_PARAMETER');
  });

  it('valid numbers still work', async () => {
    expect((await inject({ method: 'GET', url: '/api/v1/usage/overall?days=7' })).json()).toMatchObject({ days: 7 });
    expect((await inject({ method: 'GET', url: '/api/v1/usage/overall?days=3650' })).statusCode).toBe(200);
    expect((await inject({ method: 'GET', url: '/api/v1/tasks?limit=1' })).json().tasks).toHaveLength(1);
    expect((await inject({ method: 'GET', url: '/api/v1/usage/metrics/tasks?days=1' })).json()).toMatchObject({ period_days: 1 });
    const limits = await inject({ method: 'GET', url: `/api/v1/usage/task/${taskId}/limits?max_cost_usd=0.5` });
    expect(limits.json()).toMatchObject({ within_limits: true, limit_usd: 0.5 });
    expect((await inject({ method: 'GET', url: `/api/v1/usage/task/${taskId}/limits?max_cost_usd=0` })).statusCode).toBe(200);
    // Range rules still apply after the format rule.
    await expect400({ method: 'GET', url: '/api/v1/usage/overall?days=-1' }, /^days must be at least 1$/);
  });

  it('max_cost_usd in a body must be a JSON number; strings of any form are a 400 naming it', async () => {
    for (const v of ['0x10', '1e2', '', ' 1', '1']) {
      await expect400({ method: 'POST', url: SUBMIT, payload: { ...valid, max_cost_usd: v } }, /max_cost_usd must be a number of USD/);
    }
    const res = await inject({ method: 'POST', url: SUBMIT, payload: `{"repo_url":"https://github.com/example/repo","bug_description":"quick","test_command":"true","max_cost_usd":1e-1}`, headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(202);
    expect((await waitForTask(t.app, res.json().task_id, isFinal)).max_cost_usd).toBe(0.1);
  });
}

describe('input checks (SQLite)', () => {
  inputSuite(() => ({ TASK_POLL_INTERVAL_MS: '100' }));
});

describePostgres('input checks', () => {
  let db: ScratchDatabase;
  beforeAll(async () => {
    db = await createScratchPostgres();
  });
  afterAll(() => db?.drop());
  inputSuite(() => ({ DATABASE_URL: db.url, TASK_POLL_INTERVAL_MS: '100' }));
});
