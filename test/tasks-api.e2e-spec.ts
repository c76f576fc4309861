import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { TASK_AGENTS } from '../src/plugins/sdk';
import { FakeOpenAi } from './fixtures/fake-openai';
import { createTestApp, TestApp } from './support/create-app';
import { ADMIN_KEY, ALICE_KEY, bearer, BOB_KEY, expectedListOrder, isFinal, ScriptedAgent, until, waitForTask, writeApiKeys } from './support/tasks';

/**
 * The task API through the real AppModule (auth guard, validation, queue, LLM client, usage
 * pipeline), with a scripted agent and the OpenAI-compatible simulator as the only stand-ins.
 */
describe('task API', () => {
  let t: TestApp;
  let fake: FakeOpenAi;
  let keysDir: string;
  const agent = new ScriptedAgent();
  const admin = bearer(ADMIN_KEY);
  const alice = bearer(ALICE_KEY);
  const bob = bearer(BOB_KEY);
  const valid = { repo_url: 'https://github.com/example/repo', bug_description: 'hold', test_command: 'pytest tests/' };

  const submit = (payload: Record<string, unknown>, headers = admin) =>
    t.app.inject({ method: 'POST', url: '/api/v1/task/submit', payload, headers });
  const get = (url: string, headers = admin) => t.app.inject({ method: 'GET', url, headers });
  const post = (url: string, headers = admin) => t.app.inject({ method: 'POST', url, headers });

  beforeAll(async () => {
    fake = await FakeOpenAi.start({
      defaultReply: { content: '```diff\n--- a/x\n+++ b/x\n```', usage: { prompt_tokens: 1000, completion_tokens: 200 } },
    });
    keysDir = mkdtempSync(join(tmpdir(), 'asa-keys-'));
    t = await createTestApp({
      env: {
        API_KEYS_FILE: writeApiKeys(keysDir),
        OPENAI_BASE_URL: fake.baseUrl,
        OPENAI_API_KEY: 'sk-test-not-real',
        OPENAI_MAX_RETRIES: '0',
        TASK_CONCURRENCY: '4',
        TASK_POLL_INTERVAL_MS: '100',
        TASK_DEFAULT_MODEL: 'gpt-4o-mini',
        TASK_MAX_COST_USD: '2.5',
        TASK_SHUTDOWN_GRACE_MS: '0',
      },
      override: (b) => b.overrideProvider(TASK_AGENTS).useValue([agent]),
    });
  });
  afterAll(async () => {
    agent.releaseAll();
    await t?.close();
    await fake?.close();
    rmSync(keysDir, { recursive: true, force: true });
  });

  describe('validation', () => {
    it.each([
      [{ ...valid, repo_url: undefined }, 'repo_url'],
      [{ ...valid, bug_description: undefined }, 'bug_description'],
      [{ ...valid, test_command: undefined }, 'test_command'],
      [{ ...valid, test_command: 42 }, 'test_command'],
      [{ ...valid, bug_description: '' }, 'bug_description'],
      [{ ...valid, max_attempts: 0 }, 'max_attempts'],
      [{ ...valid, max_attempts: 11 }, 'max_attempts'],
      [{ ...valid, max_attempts: 2.5 }, 'max_attempts'],
      [{ ...valid, max_cost_usd: -1 }, 'max_cost_usd'],
      [{ ...valid, max_cost_usd: 'lots' }, 'max_cost_usd'],
      [{ ...valid, max_cost_usd: 1e-12 }, 'max_cost_usd'],
      [{ ...valid, max_cost_usd: 0 }, 'max_cost_usd'],
      [{ ...valid, max_cost_usd: 1e300 }, 'max_cost_usd'],
      [{ ...valid, user_id: 'has spaces' }, 'user_id'],
      [{ ...valid, model: 'two words' }, 'model'],
      [{ ...valid, priority: 'high' }, 'priority'],
    ])('400 names the field: %j', async (payload, field) => {
      const res = await submit(payload as Record<string, unknown>);
      expect(res.statusCode).toBe(400);
      expect(res.json().message).toContain(field);
    });

    it.each([
      ['--upload-pack=touch%20/tmp/pwned', 'start with "-"'],
      ['ext::sh -c touch% /tmp/pwned', 'whitespace'],
      ['ext::sh', 'remote-helper'],
      ['ftp://example.com/repo', 'scheme "ftp"'],
      ['git@github.com:example/repo.git', 'not allowed'],
      ['https://token@github.com/example/repo', 'credentials'],
      ['relative/path', 'absolute local path'],
      ['https://example.com/repo\n--upload-pack=x', 'whitespace'],
    ])('400 for repo_url %j', async (repoUrl, problem) => {
      const res = await submit({ ...valid, repo_url: repoUrl });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ code: 'TASK_INVALID_REPO_URL' });
      expect(res.json().message).toContain('repo_url');
      expect(res.json().message).toContain(problem);
    });

    it('400 for malformed JSON and for bad ids, limits, statuses and cursors', async () => {
      const bad = await t.app.inject({ method: 'POST', url: '/api/v1/task/submit', headers: { ...admin, 'content-type': 'application/json' }, payload: '{"repo_url": ' });
      expect(bad.statusCode).toBe(400);
      expect((await get('/api/v1/task/not-a-uuid')).json().message).toContain('task_id');
      expect((await post('/api/v1/task/not-a-uuid/cancel')).statusCode).toBe(400);
      for (const q of ['limit=0', 'limit=101', 'limit=abc', 'status=done', 'cursor=%%%', 'cursor=bm9wZQ', 'user_id=a%20b']) {
        const res = await get(`/api/v1/tasks?${q}`);
        expect(res.statusCode, q).toBe(400);
        expect(res.json().message, q).toMatch(new RegExp(q.split('=')[0]));
      }
    });

    it('404 for an unknown task, 401 without a key', async () => {
      const res = await get('/api/v1/task/00000000-0000-4000-8000-000000000000');
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ code: 'TASK_NOT_FOUND' });
      expect((await t.app.inject({ method: 'POST', url: '/api/v1/task/submit', payload: valid })).statusCode).toBe(401);
    });
  });

  it('submit answers 202 queued; GET shows the request with defaults, then the result and its exact cost', async () => {
    const res = await submit({ ...valid, bug_description: 'llm-succeed', user_id: 'carol' });
    expect(res.statusCode).toBe(202);
    const { task_id, status } = res.json();
    expect(status).toBe('queued');
    expect(task_id).toMatch(/^[0-9a-f-]{36}$/);

    const done = await waitForTask(t.app, task_id, isFinal, { headers: admin });
    expect(done).toMatchObject({
      task_id,
      status: 'succeeded',
      user_id: 'carol',
      repo_url: valid.repo_url,
      bug_description: 'llm-succeed',
      test_command: valid.test_command,
      model: 'gpt-4o-mini',
      max_cost_usd: 2.5,
      max_attempts: 3,
      agent: 'scripted',
      attempts: 1,
      failure_reason: null,
      patch: '```diff\n--- a/x\n+++ b/x\n```',
      test_output_tail: 'ok 1 - fixed',
      cancel_requested: false,
    });
    for (const k of ['created_at', 'started_at', 'finished_at']) expect(new Date(done[k]).toISOString()).toBe(done[k]);
    expect(Date.parse(done.started_at)).toBeGreaterThanOrEqual(Date.parse(done.created_at));
    expect(Date.parse(done.finished_at)).toBeGreaterThanOrEqual(Date.parse(done.started_at));
    expect(done.duration_seconds).toBe((Date.parse(done.finished_at) - Date.parse(done.started_at)) / 1000);

    // The call went through the task-scoped LLM client: the usage API shows it, and the task's cost is the same exact sum.
    await until(async () => (await get(`/api/v1/usage/task/${task_id}`)).json().total_requests === 1, 'usage recorded');
    const usage = (await get(`/api/v1/usage/task/${task_id}`)).json();
    expect(usage.total_cost_usd).toBeGreaterThan(0);
    const again = (await get(`/api/v1/task/${task_id}`)).json();
    expect(again.cost_usd_exact).toBe(usage.total_cost_usd_exact);
    expect(again.cost_usd).toBe(usage.total_cost_usd);
    const byUser = (await get('/api/v1/usage/user/carol?days=1')).json();
    expect(byUser.total_requests).toBe(1);
  });

  it('a failing agent ends failed with its reason, every attempt\'s LLM call recorded', async () => {
    const before = fake.chatRequests().length;
    const { task_id } = (await submit({ ...valid, bug_description: 'llm-fail', max_attempts: 2 })).json();
    const done = await waitForTask(t.app, task_id, isFinal, { headers: admin });
    expect(done).toMatchObject({ status: 'failed', failure_reason: 'tests_failed', attempts: 2, test_output_tail: 'not ok 1' });
    expect(fake.chatRequests().length - before).toBe(2);
    await until(async () => (await get(`/api/v1/usage/task/${task_id}`)).json().total_requests === 2, 'two usage records');
  });

  it('an agent that throws ends failed agent_error with a reference to the log', async () => {
    const { task_id } = (await submit({ ...valid, bug_description: 'throw' })).json();
    const done = await waitForTask(t.app, task_id, isFinal, { headers: admin });
    expect(done.status).toBe('failed');
    expect(done.failure_reason).toBe('agent_error');
    expect(done.failure_detail).toMatch(/reference [0-9a-f-]{36}/);
  });

  it('the budget stops a task with budget_exceeded', async () => {
    const { task_id } = (await submit({ ...valid, bug_description: 'llm-until-budget', max_cost_usd: 0.001 })).json();
    const done = await waitForTask(t.app, task_id, isFinal, { headers: admin });
    expect(done).toMatchObject({ status: 'failed', failure_reason: 'budget_exceeded' });
    await t.app.get(UsageRecorder).flush();
    const after = (await get(`/api/v1/task/${task_id}`)).json();
    expect(after.cost_usd).toBeLessThanOrEqual(0.001);
  });

  describe('cancel', () => {
    it('a running task is aborted and ends cancelled; cancelling again is a 409', async () => {
      const { task_id } = (await submit({ ...valid, bug_description: 'hold' })).json();
      await waitForTask(t.app, task_id, (x) => x.status === 'running', { headers: admin });
      const res = await post(`/api/v1/task/${task_id}/cancel`);
      expect(res.statusCode).toBe(202);
      expect(res.json()).toEqual({ task_id, status: 'cancelled', cancel_requested: true });
      expect(agent.abortReasons.get(task_id)).toBe('cancelled');
      const done = (await get(`/api/v1/task/${task_id}`)).json();
      expect(done).toMatchObject({ status: 'cancelled', failure_reason: 'cancelled', cancel_requested: true });
      expect(done.finished_at).not.toBeNull();
      const again = await post(`/api/v1/task/${task_id}/cancel`);
      expect(again.statusCode).toBe(409);
      expect(again.json()).toMatchObject({ code: 'TASK_ALREADY_FINISHED' });
    });

    it('a finished task cannot be cancelled', async () => {
      const { task_id } = (await submit({ ...valid, bug_description: 'llm-succeed' })).json();
      await waitForTask(t.app, task_id, isFinal, { headers: admin });
      expect((await post(`/api/v1/task/${task_id}/cancel`)).statusCode).toBe(409);
    });
  });

  describe('user-scoped keys', () => {
    it('a user key submits for its own user; naming another user is a 403', async () => {
      const own = await submit({ ...valid, bug_description: 'llm-succeed' }, alice);
      expect(own.statusCode).toBe(202);
      const task = (await get(`/api/v1/task/${own.json().task_id}`, alice)).json();
      expect(task.user_id).toBe('alice');
      expect((await submit({ ...valid, bug_description: 'quick', user_id: 'alice' }, alice)).statusCode).toBe(202);
      const other = await submit({ ...valid, user_id: 'bob' }, alice);
      expect(other.statusCode).toBe(403);
      expect(other.json().message).toContain('bob');
    });

    it('a user key sees, lists and cancels only its own tasks', async () => {
      const bobs = (await submit({ ...valid, bug_description: 'hold' }, bob)).json().task_id;
      expect((await get(`/api/v1/task/${bobs}`, alice)).statusCode).toBe(404);
      expect((await post(`/api/v1/task/${bobs}/cancel`, alice)).statusCode).toBe(404);
      expect((await get(`/api/v1/usage/task/${bobs}/limits`, alice)).statusCode).toBe(404);
      const list = (await get('/api/v1/tasks?limit=100', alice)).json();
      expect(list.tasks.length).toBeGreaterThan(0);
      expect(list.tasks.every((x: { user_id: string }) => x.user_id === 'alice')).toBe(true);
      expect((await get('/api/v1/tasks?user_id=bob', alice)).statusCode).toBe(403);
      const bobList = (await get('/api/v1/tasks?user_id=bob', admin)).json();
      expect(bobList.tasks.map((x: { task_id: string }) => x.task_id)).toContain(bobs);
      expect((await post(`/api/v1/task/${bobs}/cancel`, bob)).json().status).toBe('cancelled');
    });
  });

  it('lists newest first with an opaque keyset cursor, filtered by status and user', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await submit({ ...valid, bug_description: 'quick', user_id: 'pager' })).json().task_id);
    for (const id of ids) await waitForTask(t.app, id, isFinal, { headers: admin });
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await get(`/api/v1/tasks?user_id=pager&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.tasks.length).toBeLessThanOrEqual(2);
      seen.push(...body.tasks.map((x: { task_id: string }) => x.task_id));
      cursor = body.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(await expectedListOrder(t.app, ids, admin));
    expect([...seen].sort()).toEqual([...ids].sort());
    const summary = (await get('/api/v1/tasks?user_id=pager&limit=1')).json().tasks[0];
    expect(summary).not.toHaveProperty('patch');
    expect(summary).toMatchObject({ task_id: seen[0], status: 'succeeded', cost_usd: 0, user_id: 'pager' });

    expect((await get('/api/v1/tasks?user_id=pager&status=succeeded&limit=100')).json().tasks).toHaveLength(5);
    expect((await get('/api/v1/tasks?user_id=pager&status=queued')).json()).toEqual({ tasks: [], next_cursor: null });
  });

  it('check_usage_limits: GET /api/v1/usage/task/{id}/limits', async () => {
    const { task_id } = (await submit({ ...valid, bug_description: 'llm-succeed', max_cost_usd: 0.5 })).json();
    await waitForTask(t.app, task_id, isFinal, { headers: admin });
    await t.app.get(UsageRecorder).flush();
    const cost = (await get(`/api/v1/task/${task_id}`)).json().cost_usd;
    expect(cost).toBeGreaterThan(0);

    const own = await get(`/api/v1/usage/task/${task_id}/limits`);
    expect(own.statusCode).toBe(200);
    expect(own.json()).toMatchObject({ task_id, within_limits: true, current_cost_usd: cost, limit_usd: 0.5 });
    expect(own.json().remaining_usd).toBeCloseTo(0.5 - cost, 9);

    const tight = (await get(`/api/v1/usage/task/${task_id}/limits?max_cost_usd=${cost / 2}`)).json();
    expect(tight).toMatchObject({ within_limits: false, current_cost_usd: cost, remaining_usd: 0 });

    expect((await get(`/api/v1/usage/task/${task_id}/limits?max_cost_usd=abc`)).statusCode).toBe(400);
    const foreign = await get('/api/v1/usage/task/external-task-1/limits');
    expect(foreign.statusCode).toBe(400);
    expect(foreign.json().message).toContain('max_cost_usd');
    expect((await get('/api/v1/usage/task/external-task-1/limits?max_cost_usd=5')).json()).toMatchObject({
      within_limits: true,
      current_cost_usd: 0,
      limit_usd: 5,
      remaining_usd: 5,
    });
  });

  it('documents every task route in the OpenAPI document', async () => {
    const paths = (await get('/docs-json')).json().paths;
    for (const p of ['/api/v1/task/submit', '/api/v1/task/{task_id}', '/api/v1/tasks', '/api/v1/task/{task_id}/cancel', '/api/v1/usage/task/{task_id}/limits', '/api/v1/usage/metrics/tasks']) {
      expect(paths[p], p).toBeDefined();
    }
  });
});
