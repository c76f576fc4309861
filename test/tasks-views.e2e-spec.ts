import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MATH_BUG, demoResponder } from '../src/demo/demo-responder';
import { copyAsRepo } from '../src/demo/git-init';
import { SAMPLE_REPO_DIR } from '../src/demo/run-demo';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { FakeOpenAi } from './fixtures/fake-openai';
import { createTestApp, TestApp } from './support/create-app';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';
import { freePort } from './support/service-process';
import { sandboxReachableTempDir } from './support/scratch';
import { isFinal, waitForTask } from './support/tasks';

/**
 * What the task views say about what is known, with the built-in bug-fix agent on a real git copy
 * of the bundled sample repository, the real openai SDK and the simulator playing the model.
 */
describe('task views say what is known', () => {
  let dir: string;
  let repo: string;
  const task = { bug_description: MATH_BUG, test_command: 'node test/math.test.js' };
  const baseEnv = (workspaces: string) => ({
    OPENAI_API_KEY: 'sk-test',
    OPENAI_MAX_RETRIES: '0',
    TASK_POLL_INTERVAL_MS: '100',
    TASK_DEFAULT_MODEL: 'gpt-4o-mini',
    TASK_WORKSPACE_DIR: workspaces,
    TASK_SHUTDOWN_GRACE_MS: '0',
  });

  beforeAll(async () => {
    dir = sandboxReachableTempDir('asa-views-');
    repo = join(dir, 'sample-repo');
    await copyAsRepo(SAMPLE_REPO_DIR, repo);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe('with a model answering (SQLite)', () => modelAnsweringSuite(() => ({})));

  describePostgres('with a model answering', () => {
    let db: ScratchDatabase;
    beforeAll(async () => {
      db = await createScratchPostgres();
    });
    afterAll(() => db?.drop());
    modelAnsweringSuite(() => ({ DATABASE_URL: db.url }));
  });

  function modelAnsweringSuite(databaseEnv: () => Record<string, string>): void {
    let t: TestApp;
    let fake: FakeOpenAi;
    const submit = (payload: Record<string, unknown>) => t.app.inject({ method: 'POST', url: '/api/v1/task/submit', payload: { repo_url: repo, ...task, ...payload } });
    const get = (url: string) => t.app.inject({ method: 'GET', url });

    beforeAll(async () => {
      fake = await FakeOpenAi.start({ defaultReply: demoResponder });
      t = await createTestApp({
        env: { ...baseEnv(join(dir, `ws-${Object.keys(databaseEnv()).length}`)), ...databaseEnv(), OPENAI_BASE_URL: fake.baseUrl, LLM_UNPRICED_UNDER_BUDGET: 'allow' },
      });
    });
    afterAll(async () => {
      await t?.close();
      await fake?.close();
    });

    it('a task on an unpriced model shows its unpriced calls and no exact cost; a priced one an exact cost', async () => {
      const unpriced = (await submit({ model: 'my-finetune-v1' })).json().task_id;
      const priced = (await submit({})).json().task_id;
      const a = await waitForTask(t.app, unpriced, isFinal, { timeoutMs: 60_000 });
      const b = await waitForTask(t.app, priced, isFinal, { timeoutMs: 60_000 });
      await t.app.get(UsageRecorder).flush();

      const unpricedView = (await get(`/api/v1/task/${unpriced}`)).json();
      expect(a.status).toBe('succeeded');
      expect(unpricedView).toMatchObject({ status: 'succeeded', model: 'my-finetune-v1', unpriced_requests: 1, cost_usd: 0, cost_usd_exact: null });
      expect(unpricedView.cost_note).toMatch(/^1 model call of this task used a model with no known price: their cost is unknown and not in cost_usd/);
      // The usage API agrees: one call, unpriced.
      expect((await get(`/api/v1/usage/task/${unpriced}`)).json()).toMatchObject({ total_requests: 1, unpriced_requests: 1 });

      const pricedView = (await get(`/api/v1/task/${priced}`)).json();
      expect(b.status).toBe('succeeded');
      expect(pricedView).toMatchObject({ unpriced_requests: 0, cost_note: null });
      expect(pricedView.cost_usd).toBeGreaterThan(0);
      expect(pricedView.cost_usd_exact).toBe((await get(`/api/v1/usage/task/${priced}`)).json().total_cost_usd_exact);

      // The list says the same as the task views.
      const items = (await get('/api/v1/tasks?limit=100')).json().tasks as Record<string, unknown>[];
      expect(items.find((x) => x.task_id === unpriced)).toMatchObject({ unpriced_requests: 1, cost_usd_exact: null, cost_note: unpricedView.cost_note, failure_detail: null });
      expect(items.find((x) => x.task_id === priced)).toMatchObject({ unpriced_requests: 0, cost_usd_exact: pricedView.cost_usd_exact, cost_note: null });
    });

    it('a local repo_url that does not exist, is a file, or is a folder without git is a 400 naming repo_url at submit', async () => {
      const plain = mkdtempSync(join(dir, 'plain-folder-'));
      writeFileSync(join(plain, 'README.md'), 'not a repository\n');
      const cases: [string, RegExp][] = [
        [join(dir, 'no-such-repo'), /^repo_url: ".*no-such-repo" does not exist on the service's machine$/],
        [`file://${join(dir, 'no-such-repo')}`, /^repo_url: ".*no-such-repo" does not exist/],
        [join(plain, 'README.md'), /^repo_url: ".*README\.md" is a file, not a git repository folder$/],
        [plain, /^repo_url: ".*plain-folder-\w+" is a folder but not a git repository \(no \.git in it\)/],
      ];
      for (const [repoUrl, message] of cases) {
        const res = await submit({ repo_url: repoUrl });
        expect(res.statusCode, repoUrl).toBe(400);
        expect(res.json(), repoUrl).toMatchObject({ code: 'TASK_INVALID_REPO_URL' });
        expect(res.json().message, repoUrl).toMatch(message);
      }
      // A bare repository is a repository too.
      const { execFileSync } = await import('node:child_process');
      const bare = `${mkdtempSync(join(dir, 'bare-'))}/repo.git`;
      execFileSync('git', ['clone', '-q', '--bare', repo, bare]);
      expect((await submit({ repo_url: bare, bug_description: 'anything' })).statusCode).toBe(202);
    });
  }

  describe('with nothing listening at OPENAI_BASE_URL', () => {
    let t: TestApp;
    let baseUrl: string;

    beforeAll(async () => {
      baseUrl = `http://127.0.0.1:${await freePort()}/v1`;
      t = await createTestApp({ env: { ...baseEnv(join(dir, 'ws-b')), OPENAI_BASE_URL: baseUrl } });
    });
    afterAll(() => t?.close());

    it("the task fails with llm_error and failure_detail names the base URL tried, in the task and in the list", async () => {
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/task/submit', payload: { repo_url: repo, ...task } });
      expect(res.statusCode, res.body).toBe(202);
      const id = res.json().task_id;
      const done = await waitForTask(t.app, id, isFinal, { timeoutMs: 60_000 });
      expect(done).toMatchObject({ status: 'failed', failure_reason: 'llm_error' });
      expect(done.failure_detail).toBe(`model call failed: Connection error. (LLM endpoint ${baseUrl}, OPENAI_BASE_URL)`);
      const items = (await t.app.inject({ method: 'GET', url: '/api/v1/tasks' })).json().tasks;
      expect(items.find((x: { task_id: string }) => x.task_id === id)).toMatchObject({ failure_reason: 'llm_error', failure_detail: done.failure_detail });
    });
  });
});
