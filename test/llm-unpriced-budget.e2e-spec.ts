import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { LlmClientFactory } from '../src/modules/llm/llm-client.factory';
import { LlmUnpricedModelException } from '../src/modules/llm/llm.exceptions';
import { LlmUsage } from '../src/modules/usage/entities/llm-usage.entity';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { FakeOpenAi } from './fixtures/fake-openai';
import { createTestApp, TestApp } from './support/create-app';
import { createBuggyRepo, isFinal, waitForTask } from './support/tasks';

const USER_HI = [{ role: 'user' as const, content: 'hi' }];

/**
 * A model with no known price under a budget: its cost could not be held to the budget, so its
 * calls are refused (before the provider is called) unless LLM_UNPRICED_UNDER_BUDGET=allow.
 * Found by an adversarial user: 10 calls and 13,000 tokens ran under a $0.0001 budget.
 */
describe('unpriced models under a budget', () => {
  let fake: FakeOpenAi;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'asa-unpriced-'));
    chmodSync(dir, 0o711); // the sandbox's user (uid 65534 when tests run as root) passes through to the workspaces
    fake = await FakeOpenAi.start({ defaultReply: { content: 'no idea', usage: { prompt_tokens: 1300, completion_tokens: 20 } } });
  });
  afterAll(async () => {
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => fake.reset());

  const appWith = (env: Record<string, string> = {}) =>
    createTestApp({
      env: {
        OPENAI_BASE_URL: fake.baseUrl,
        OPENAI_API_KEY: 'sk-test',
        OPENAI_MAX_RETRIES: '0',
        TASK_POLL_INTERVAL_MS: '100',
        TASK_WORKSPACE_DIR: join(dir, 'workspaces'),
        ...env,
      },
    });
  const rowsOf = async (t: TestApp, taskId: string) => {
    await t.app.get(UsageRecorder).flush();
    return t.app.get(DataSource).getRepository(LlmUsage).find({ where: { taskId } });
  };

  describe('by default (refuse)', () => {
    let t: TestApp;
    beforeAll(async () => (t = await appWith()));
    afterAll(() => t?.close());

    it('a task-budget client refuses the call, names the model and the pricing file, and calls nobody', async () => {
      const llm = t.app.get(LlmClientFactory).forTask('t-unpriced-budget', { maxCostUsd: 0.0001 });
      const err = await llm.chat({ model: 'my-local-model', messages: USER_HI }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LlmUnpricedModelException);
      const message = (err as Error).message;
      expect(message).toContain('"my-local-model"');
      expect(message).toContain('config/pricing.json');
      expect(message).toContain('LLM_UNPRICED_UNDER_BUDGET=allow');
      expect(fake.requests).toHaveLength(0);
      expect(await rowsOf(t, 't-unpriced-budget')).toHaveLength(0);
    });

    it('without a budget the same model is called and recorded as unpriced', async () => {
      await t.app.get(LlmClientFactory).forTask('t-unpriced-free').chat({ model: 'my-local-model', messages: USER_HI });
      expect(fake.requests).toHaveLength(1);
      expect((await rowsOf(t, 't-unpriced-free')).map((r) => [r.unpriced, r.costNanos])).toEqual([[true, null]]);
    });

    it('submitting a task on an unpriced model is a 400 naming model; a priced model is accepted', async () => {
      const repo = createBuggyRepo(dir, 'repo-refuse');
      const body = { repo_url: repo.path, bug_description: 'add is wrong', test_command: repo.testCommand, max_cost_usd: 0.0001 };
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/task/submit', payload: { ...body, model: 'my-local-model' } });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json()).toMatchObject({ code: 'TASK_UNPRICED_MODEL' });
      expect(res.json().message).toMatch(/^model: model "my-local-model" .*has no known price/);
      const ok = await t.app.inject({ method: 'POST', url: '/api/v1/task/submit', payload: { ...body, model: 'gpt-4o-mini', max_attempts: 1 } });
      expect(ok.statusCode, ok.body).toBe(202);
      await waitForTask(t.app, ok.json().task_id, isFinal);
    });
  });

  describe('LLM_UNPRICED_UNDER_BUDGET=allow', () => {
    let t: TestApp;
    beforeAll(async () => (t = await appWith({ LLM_UNPRICED_UNDER_BUDGET: 'allow' })));
    afterAll(() => t?.close());

    it('lets a task on an unpriced model run: its calls are recorded as unpriced, never as 0', async () => {
      const repo = createBuggyRepo(dir, 'repo-allow');
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/task/submit',
        payload: { repo_url: repo.path, bug_description: 'add is wrong', test_command: repo.testCommand, model: 'my-local-model', max_cost_usd: 0.0001, max_attempts: 2 },
      });
      expect(res.statusCode, res.body).toBe(202);
      const task = await waitForTask(t.app, res.json().task_id, isFinal);
      expect(task).toMatchObject({ status: 'failed', failure_reason: 'no_patch', attempts: 2 });
      const rows = await rowsOf(t, task.task_id);
      expect(rows.map((r) => [r.unpriced, r.costNanos])).toEqual([
        [true, null],
        [true, null],
      ]);
    });
  });
});
