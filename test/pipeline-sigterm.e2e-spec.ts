import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { FakeOpenAi } from './fixtures/fake-openai';
import { sqlite, waitFor } from './support/pipeline';
import { buildService, freePort, ProcessExit, startService, waitForHttp, taskServiceEnv } from './support/service-process';
import { createBuggyRepo } from './support/tasks';
import { sandboxReachableTempDir } from './support/scratch';

/**
 * The built service as a real process (`node dist/main.js`): LLM calls of a real task leave
 * usage records queued (a one-minute flush interval and a huge batch keep them in memory), then
 * SIGTERM. Nest's shutdown hooks must drain the queue into the database before the process ends.
 */
describe('SIGTERM drains queued usage records (real process)', () => {
  let dir: string;
  let fake: FakeOpenAi;

  beforeAll(async () => {
    buildService();
    dir = sandboxReachableTempDir('asa-sigterm-');
    // The model never produces a usable patch, so each attempt is one LLM call.
    fake = await FakeOpenAi.start({ defaultReply: { content: 'no idea', usage: { prompt_tokens: 1234, completion_tokens: 56 } } });
  }, 300_000);
  afterAll(async () => {
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes every queued record before the process exits', async () => {
    const repo = createBuggyRepo(dir);
    const db = join(dir, 'asa.db');
    const port = await freePort();
    const svc = startService({
      cwd: dir,
      env: {
        ...taskServiceEnv({ port, llmBaseUrl: fake.baseUrl, workspaceDir: join(dir, 'workspaces') }),
        DATABASE_URL: `sqlite:${db}`,
        USAGE_FLUSH_INTERVAL_MS: '60000',
        USAGE_BATCH_SIZE: '100000',
      },
    });
    let exit: ProcessExit | undefined;
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitForHttp(`${base}/health`, 60_000, svc as never);
      const submitted = await fetch(`${base}/api/v1/task/submit`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          repo_url: repo.path,
          bug_description: 'add(2, 3) returns -1 instead of 5',
          test_command: repo.testCommand,
          max_attempts: 3,
          user_id: 'sigterm-user',
        }),
      });
      expect(submitted.status, await submitted.clone().text()).toBe(202);
      const taskId = ((await submitted.json()) as { task_id: string }).task_id;
      await waitFor(
        'the task to finish',
        async () => ['succeeded', 'failed', 'cancelled'].includes(((await (await fetch(`${base}/api/v1/task/${taskId}`)).json()) as { status: string }).status),
        60_000,
      );
      const calls = fake.chatRequests().length;
      expect(calls).toBeGreaterThan(0);

      // Still queued: nothing in the database yet.
      const before = sqlite(db);
      expect(await before.all('SELECT id FROM llm_usage')).toHaveLength(0);
      await before.close();

      exit = await svc.stop('SIGTERM');
    } finally {
      if (svc.child.exitCode === null && svc.child.signalCode === null) await svc.stop('SIGKILL');
    }
    expect(exit).toEqual({ code: null, signal: 'SIGTERM' });
    expect(svc.output()).toMatch(/draining \d+ queued usage records \(SIGTERM\)/);

    const after = sqlite(db);
    try {
      const rows = await after.all<{ task_id: string; user_id: string; input_tokens: number }>('SELECT task_id, user_id, input_tokens FROM llm_usage');
      expect(rows).toHaveLength(fake.chatRequests().length);
      for (const r of rows) expect(r).toMatchObject({ user_id: 'sigterm-user', input_tokens: 1234 });
    } finally {
      await after.close();
    }
  }, 180_000);
});
