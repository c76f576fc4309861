import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { FakeOpenAi } from './fixtures/fake-openai';
import { createTestApp, TestApp } from './support/create-app';
import { pidsRunning } from './support/processes';
import { BuggyRepo, createBuggyRepo, isFinal, until, waitForTask } from './support/tasks';

const SECRET_KEY = 'sk-test-secret-key-must-not-leak-1234';

/**
 * End to end with the built-in bug-fix agent: the real AppModule, a real git repository with a
 * failing Node test, real `git apply` and test runs, the real openai SDK against the
 * OpenAI-compatible simulator (the only stand-in: it plays the model).
 */
describe('bug-fix tasks end to end', () => {
  let t: TestApp;
  let fake: FakeOpenAi;
  let dir: string;
  let workspaces: string;
  let repo: BuggyRepo;
  const fenced = (diff: string) => `Here is the fix.\n\n\`\`\`diff\n${diff}\`\`\`\n`;

  const get = (url: string) => t.app.inject({ method: 'GET', url });
  const submit = async (payload: Record<string, unknown>) => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/task/submit',
      payload: { repo_url: repo.path, bug_description: 'add(2, 3) returns -1 instead of 5', test_command: repo.testCommand, ...payload },
    });
    expect(res.statusCode, res.body).toBe(202);
    return res.json().task_id as string;
  };
  const usageOf = async (taskId: string) => {
    await t.app.get(UsageRecorder).flush();
    return (await get(`/api/v1/usage/task/${taskId}`)).json();
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'asa-bugfix-'));
    chmodSync(dir, 0o711); // the sandbox's user (uid 65534 when tests run as root) passes through to the workspaces
    workspaces = join(dir, 'workspaces');
    repo = createBuggyRepo(dir);
    fake = await FakeOpenAi.start({ defaultReply: { content: 'no idea' } });
    t = await createTestApp({
      env: {
        OPENAI_BASE_URL: fake.baseUrl,
        OPENAI_API_KEY: SECRET_KEY,
        OPENAI_MAX_RETRIES: '0',
        TASK_CONCURRENCY: '2',
        TASK_POLL_INTERVAL_MS: '100',
        TASK_DEFAULT_MODEL: 'gpt-4o-mini',
        TASK_WORKSPACE_DIR: workspaces,
        TASK_KILL_GRACE_MS: '500',
        TASK_SHUTDOWN_GRACE_MS: '0',
      },
    });
  });
  afterAll(async () => {
    await t?.close();
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => fake.reset());

  it('a correct diff: the task succeeds, the tests pass, and the usage API shows the call and its cost', async () => {
    fake.enqueue({ content: fenced(repo.goodDiff), usage: { prompt_tokens: 2000, completion_tokens: 150 } });
    const id = await submit({ user_id: 'alice' });
    const done = await waitForTask(t.app, id, isFinal, { timeoutMs: 60_000 });
    expect(done).toMatchObject({ status: 'succeeded', attempts: 1, failure_reason: null, user_id: 'alice' });
    expect(done.patch).toContain('+  return a + b;');
    expect(done.test_output_tail).toContain('ok 1 - add works');
    fake.expectAllRepliesUsed();
    // The model was given the bug and the failing test output.
    const prompt = JSON.stringify(fake.chatRequests()[0].body.messages);
    expect(prompt).toContain('add(2, 3) returns -1 instead of 5');
    expect(prompt).toContain('math.js');

    // The final patch really fixes the repository: apply it to a fresh clone and run its tests.
    const check = join(dir, 'check');
    execFileSync('git', ['clone', '-q', '--', repo.path, check]);
    writeFileSync(join(check, 'fix.patch'), done.patch);
    execFileSync('git', ['apply', 'fix.patch'], { cwd: check });
    expect(execFileSync('node', ['test.js'], { cwd: check, encoding: 'utf8' })).toContain('ok 1');
    // The source repository itself is untouched; the workspace is gone.
    expect(readFileSync(join(repo.path, 'math.js'), 'utf8')).toContain('a - b');
    expect(existsSync(workspaces) ? readdirSync(workspaces) : []).toEqual([]);

    const usage = await usageOf(id);
    expect(usage).toMatchObject({ task_id: id, total_requests: 1, total_tokens: 2150 });
    expect(usage.total_cost_usd).toBeGreaterThan(0);
    expect(usage.by_model['gpt-4o-mini']).toMatchObject({ requests: 1, tokens: 2150 });
    const task = (await get(`/api/v1/task/${id}`)).json();
    expect(task.cost_usd_exact).toBe(usage.total_cost_usd_exact);
  });

  it('a wrong diff fails after max_attempts, each attempt fed the test output and recorded in usage', async () => {
    fake.setDefault({ content: fenced(repo.wrongDiff), usage: { prompt_tokens: 1000, completion_tokens: 100 } });
    try {
      const id = await submit({ max_attempts: 2, repo_url: `file://${repo.path}` });
      const done = await waitForTask(t.app, id, isFinal, { timeoutMs: 60_000 });
      expect(done).toMatchObject({ status: 'failed', failure_reason: 'tests_failed', attempts: 2 });
      expect(done.failure_detail).toBe('the tests still failed after 2 attempt(s); see test_output_tail');
      expect(done.test_output_tail).toContain('add(2, 3) should be 5');
      const chats = fake.chatRequests();
      expect(chats).toHaveLength(2);
      // The second attempt saw what the first patch did to the tests.
      expect(JSON.stringify(chats[1].body.messages)).toContain('return a * b');
      const usage = await usageOf(id);
      expect(usage.total_requests).toBe(2);
      expect(usage.total_tokens).toBe(2200);
      expect((await get(`/api/v1/task/${id}`)).json().cost_usd_exact).toBe(usage.total_cost_usd_exact);
    } finally {
      fake.setDefault({ content: 'no idea' });
    }
  });

  it('the budget stops a task with budget_exceeded before a call that could pass it', async () => {
    // Each call costs ~0.003 USD (20k prompt tokens of gpt-4o-mini); 0.01 USD allows a few, not ten.
    fake.setDefault({ content: fenced(repo.wrongDiff), usage: { prompt_tokens: 20_000, completion_tokens: 100 } });
    try {
      const id = await submit({ max_attempts: 10, max_cost_usd: 0.01 });
      const done = await waitForTask(t.app, id, isFinal, { timeoutMs: 60_000 });
      expect(done).toMatchObject({ status: 'failed', failure_reason: 'budget_exceeded' });
      const calls = fake.chatRequests().length;
      expect(calls).toBeGreaterThanOrEqual(1);
      expect(calls).toBeLessThan(10);
      const usage = await usageOf(id);
      expect(usage.total_requests).toBe(calls);
      expect(usage.total_cost_usd).toBeGreaterThan(0);
      expect(usage.total_cost_usd).toBeLessThanOrEqual(0.01);
      expect((await get(`/api/v1/task/${id}`)).json().cost_usd_exact).toBe(usage.total_cost_usd_exact);
    } finally {
      fake.setDefault({ content: 'no idea' });
    }
  });

  it('a budget too small for even the first call: budget_exceeded, no call made, usage shows zeros', async () => {
    const id = await submit({ max_cost_usd: 0.000001 });
    const done = await waitForTask(t.app, id, isFinal, { timeoutMs: 60_000 });
    expect(done).toMatchObject({ status: 'failed', failure_reason: 'budget_exceeded', cost_usd: 0 });
    expect(fake.chatRequests()).toHaveLength(0);
    const usage = await usageOf(id);
    expect(usage).toMatchObject({ task_id: id, total_requests: 0, total_cost_usd: 0 });
  });

  it('cancel kills a long-running test command and everything it started', async () => {
    // Background children, one in a new session (outside the process group): all must go.
    const id = await submit({ test_command: 'sleep 616161 & setsid sleep 616162 & sleep 616163; wait' });
    await until(() => pidsRunning('sleep', '616163').length === 1, 'test command started', 30_000);
    expect(pidsRunning('sleep', '616162')).toHaveLength(1);

    const res = await t.app.inject({ method: 'POST', url: `/api/v1/task/${id}/cancel` });
    expect(res.statusCode).toBe(202);
    const done = await waitForTask(t.app, id, isFinal);
    expect(done).toMatchObject({ status: 'cancelled', failure_reason: 'cancelled' });
    await until(() => ['616161', '616162', '616163'].every((n) => pidsRunning('sleep', n).length === 0), 'test processes gone', 10_000);
    expect(existsSync(workspaces) ? readdirSync(workspaces) : []).toEqual([]);
  });

  it('what a passing test command leaves in the background (setsid, nohup, double fork) does not outlive it', async () => {
    fake.enqueue({ content: fenced(repo.goodDiff) });
    const id = await submit({
      test_command: `setsid sleep 626261 & nohup sleep 626262 >/dev/null 2>&1 & (setsid sh -c 'sleep 626263' &); node test.js`,
    });
    const done = await waitForTask(t.app, id, isFinal, { timeoutMs: 60_000 });
    expect(done.status).toBe('succeeded'); // both runs (before and after the patch) started the sleeps
    for (const n of ['626261', '626262', '626263']) expect(pidsRunning('sleep', n), `sleep ${n}`).toEqual([]);
  });

  it('the test command cannot see OPENAI_API_KEY or the database URL', async () => {
    fake.enqueue({ content: fenced(repo.goodDiff) });
    const id = await submit({ test_command: 'env; node test.js' });
    const done = await waitForTask(t.app, id, isFinal, { timeoutMs: 60_000 });
    expect(done.status).toBe('succeeded');
    const seen = done.test_output_tail as string;
    expect(seen).toContain('PATH=');
    expect(seen).toContain('CI=true');
    expect(seen).not.toContain(SECRET_KEY);
    expect(seen).not.toMatch(/^OPENAI_API_KEY=/m);
    expect(seen).not.toMatch(/^DATABASE_URL=/m);
    expect(seen).not.toContain('asa.db');
  });
});
