import { getDataSourceToken } from '@nestjs/typeorm';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { TASK_AGENTS } from '../src/plugins/sdk';
import { createTestApp, TestApp } from './support/create-app';
import { sqlite } from './support/pipeline';
import { isFinal, ScriptedAgent, until, waitForTask } from './support/tasks';
import { usageRecord } from './support/usage-records';

const submitBody = (bug: string, extra: Record<string, unknown> = {}) => ({
  repo_url: 'https://github.com/example/repo',
  bug_description: bug,
  test_command: 'true',
  ...extra,
});

describe('SQLite: another process holds the write lock', () => {
  let t: TestApp;
  let file: string;
  let taskId: string;

  beforeAll(async () => {
    const agent = new ScriptedAgent();
    // busy_timeout of 3 s: a write waits that long for the lock, then gives up.
    t = await createTestApp({
      env: { SQLITE_BUSY_TIMEOUT_MS: '3000', TASK_POLL_INTERVAL_MS: '200' },
      override: (b) => b.overrideProvider(TASK_AGENTS).useValue([agent]),
    });
    file = join(t.dir, 'asa.db');
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/task/submit', payload: submitBody('quick', { user_id: 'lock-user' }) });
    taskId = res.json().task_id;
    await waitForTask(t.app, taskId, isFinal);
    const recorder = t.app.get(UsageRecorder);
    for (let i = 0; i < 5; i++) await recorder.record(usageRecord({ userId: 'lock-user' }));
    await recorder.flush();
  });
  afterAll(() => t?.close());

  it('reads answer while a write waits for the lock; the write answers 503 with Retry-After; /health says writes are blocked', async () => {
    const locker = sqlite(file);
    await locker.run('BEGIN IMMEDIATE;');
    try {
      // A write of the service now waits for the lock (up to busy_timeout) on the writer connection.
      let submitAnswered = false;
      const submitting = t.app
        .inject({ method: 'POST', url: '/api/v1/task/submit', payload: submitBody('quick', { user_id: 'refused-under-lock' }) })
        .then((r) => {
          submitAnswered = true;
          return r;
        });
      await sleep(300); // lets the submit reach its INSERT

      const [overall, task, list, stats] = await Promise.all([
        t.app.inject({ method: 'GET', url: '/api/v1/usage/overall?days=1' }),
        t.app.inject({ method: 'GET', url: `/api/v1/task/${taskId}` }),
        t.app.inject({ method: 'GET', url: '/api/v1/tasks?user_id=lock-user' }),
        t.app.inject({ method: 'GET', url: '/api/v1/usage/metrics/tasks?user_id=lock-user' }),
      ]);
      // Answered before the pending write: reads do not queue behind it.
      expect(submitAnswered).toBe(false);
      expect(overall.statusCode).toBe(200);
      expect(overall.json()).toMatchObject({ total_requests: 5, by_user: { 'lock-user': { requests: 5 } } });
      expect(task.statusCode).toBe(200);
      expect(task.json()).toMatchObject({ task_id: taskId, status: 'succeeded' });
      expect(list.json().tasks.map((x: { task_id: string }) => x.task_id)).toEqual([taskId]);
      expect(stats.json()).toMatchObject({ total_tasks: 1, by_status: { succeeded: 1 } });

      const submit = await submitting;
      expect(submit.statusCode).toBe(503);
      expect(Number(submit.headers['retry-after'])).toBeGreaterThan(0);
      expect(submit.json()).toMatchObject({ code: 'DATABASE_UNAVAILABLE', message: expect.stringContaining('locked') });

      // The truth: the database answers reads, but no write can get through.
      const health = await t.app.inject({ method: 'GET', url: '/health' });
      expect(health.statusCode).toBe(503);
      expect(Number(health.headers['retry-after'])).toBeGreaterThan(0);
      expect(health.json()).toMatchObject({
        code: 'DATABASE_UNAVAILABLE',
        details: { database: { status: 'up' }, database_writes: { status: 'down', message: expect.stringContaining('locked') } },
      });
      // Reads still answer after all that, with the lock still held.
      expect((await t.app.inject({ method: 'GET', url: `/api/v1/task/${taskId}` })).statusCode).toBe(200);
      expect((await locker.all<{ n: number }>('SELECT COUNT(*) AS n FROM tasks'))[0].n).toBe(1);
    } finally {
      await locker.run('ROLLBACK;');
    }
    try {
      const health = await t.app.inject({ method: 'GET', url: '/health' });
      expect(health.statusCode).toBe(200);
      expect(health.json()).toMatchObject({ status: 'ok', info: { database: { status: 'up' }, database_writes: { status: 'up' } } });
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/task/submit', payload: submitBody('quick', { user_id: 'lock-user' }) });
      expect(res.statusCode).toBe(202);
      await waitForTask(t.app, res.json().task_id, isFinal);
      // The refused submit left nothing behind.
      expect(await locker.all("SELECT id FROM tasks WHERE user_id = 'refused-under-lock'")).toEqual([]);
    } finally {
      await locker.close();
    }
  }, 60_000);

  it("a transaction rolled back on the main connection (a refused usage batch) does not undo a task's end state", async () => {
    const agent = new ScriptedAgent();
    const app = await createTestApp({ env: { TASK_POLL_INTERVAL_MS: '100' }, override: (b) => b.overrideProvider(TASK_AGENTS).useValue([agent]) });
    try {
      const id = (await app.app.inject({ method: 'POST', url: '/api/v1/task/submit', payload: submitBody('hold') })).json().task_id;
      await until(() => agent.started.includes(id), 'task running');
      // What the usage sink does for each batch: a transaction on the main DataSource, here held open and then rolled back.
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const batch = app.app
        .get<DataSource>(getDataSourceToken())
        .transaction(async (m) => {
          await m.query('SELECT COUNT(*) FROM llm_usage');
          await gate;
          throw new Error('batch refused');
        })
        .catch((err: Error) => err.message);
      agent.release(id);
      // The end state is committed (visible to other connections) while that transaction is still open...
      expect(await waitForTask(app.app, id, isFinal, { timeoutMs: 10_000 })).toMatchObject({ status: 'succeeded' });
      release();
      expect(await batch).toBe('batch refused');
      // ...and its rollback does not take the end state with it.
      const locker = sqlite(join(app.dir, 'asa.db'));
      try {
        expect(await locker.all(`SELECT status FROM tasks WHERE id = '${id}'`)).toEqual([{ status: 'succeeded' }]);
      } finally {
        await locker.close();
      }
    } finally {
      agent.releaseAll();
      await app.close();
    }
  }, 60_000);
});
