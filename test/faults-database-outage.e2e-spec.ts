import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { getDataSourceToken } from '@nestjs/typeorm';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { LlmClientFactory } from '../src/modules/llm/llm-client.factory';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { TASK_AGENTS } from '../src/plugins/sdk';
import { FakeOpenAi } from './fixtures/fake-openai';
import { createTestApp, TestApp } from './support/create-app';
import { TcpProxy } from './support/pipeline';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';
import { heldOutcome, insertTaskRow, isFinal, ScriptedAgent, until, waitForTask } from './support/tasks';

const OUTAGE_MS = 15_000;
const STALE_AFTER_MS = 4_000;
const SLOW_POLL_MS = 1_000;

const submitBody = (bug: string, extra: Record<string, unknown> = {}) => ({
  repo_url: 'https://github.com/example/repo',
  bug_description: bug,
  test_command: 'true',
  ...extra,
});

/** While the database is down: a 503 with Retry-After and the DATABASE_UNAVAILABLE code, never a 500. */
async function expectUnavailable(app: NestFastifyApplication, req: Parameters<NestFastifyApplication['inject']>[0]): Promise<void> {
  const res = await app.inject(req);
  const what = typeof req === 'string' ? req : `${req.method} ${req.url}`;
  expect(res.statusCode, what).toBe(503);
  expect(Number(res.headers['retry-after']), what).toBeGreaterThan(0);
  expect(res.json(), what).toMatchObject({ statusCode: 503, error: 'Service Unavailable', code: 'DATABASE_UNAVAILABLE' });
  expect(res.json().message, what).toMatch(/database is not available/);
  // The client learns what kind of fault it is, not where the database is.
  expect(res.body, what).not.toMatch(/127\.0\.0\.1|:\d{4,5}\b/);
}

describePostgres('database outage while tasks finish', () => {
  let db: ScratchDatabase;
  let proxy: TcpProxy;
  let fake: FakeOpenAi;
  let direct: Client;

  beforeAll(async () => {
    db = await createScratchPostgres();
    proxy = new TcpProxy(Number(new URL(db.url).port || 5432));
    await proxy.start();
    fake = await FakeOpenAi.start({ defaultReply: { content: 'a reply', usage: { prompt_tokens: 20, completion_tokens: 5 } } });
    direct = new Client({ connectionString: db.url });
    await direct.connect();
  });
  afterAll(async () => {
    await direct?.end();
    await proxy?.stop();
    await fake?.close();
    await db?.drop();
  });

  it('keeps every outcome, answers 503 while down and 200 after, reaps nothing live, loses no usage record', async () => {
    const viaProxy = new URL(db.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const env = {
      DATABASE_URL: viaProxy.toString(),
      OPENAI_BASE_URL: fake.baseUrl,
      OPENAI_API_KEY: 'sk-test-not-real',
      OPENAI_MAX_RETRIES: '0',
      TASK_CONCURRENCY: '6',
      TASK_STALE_AFTER_MS: String(STALE_AFTER_MS),
      TASK_SHUTDOWN_GRACE_MS: '0',
    };
    // Two replicas. A heartbeats once a second, B polls ten times as often: right after the outage
    // B looks at A's rows long before A has refreshed them.
    const agentA = new ScriptedAgent();
    const agentB = new ScriptedAgent();
    const a = await createTestApp({ env: { ...env, TASK_POLL_INTERVAL_MS: String(SLOW_POLL_MS) }, override: (m) => m.overrideProvider(TASK_AGENTS).useValue([agentA]) });
    let b: TestApp | undefined;
    try {
      b = await createTestApp({ env: { ...env, TASK_POLL_INTERVAL_MS: '100' }, override: (m) => m.overrideProvider(TASK_AGENTS).useValue([agentB]) });
      const apps = [a.app, b.app];
      const release = (ids: string[]) => ids.forEach((id) => [agentA, agentB].forEach((ag) => ag.release(id)));

      const ids: string[] = [];
      for (let i = 0; i < 10; i++) {
        const res = await apps[i % 2].inject({ method: 'POST', url: '/api/v1/task/submit', payload: submitBody('llm-hold') });
        expect(res.statusCode).toBe(202);
        ids.push(res.json().task_id);
      }
      // Every task has made its LLM call and reported its patch, and now waits to be released.
      await until(async () => {
        const rows = await direct.query<{ n: string }>(`SELECT COUNT(*) AS n FROM tasks WHERE status = 'running' AND patch IS NOT NULL`);
        return rows.rows[0].n === '10';
      }, 'ten tasks running with their patch stored', 90_000);
      expect(agentA.started.length).toBeGreaterThanOrEqual(4);
      // Two of A's tasks stay running across the outage; the other eight finish while it lasts.
      const heldAcross = agentA.started.slice(0, 2);
      const finishing = ids.filter((id) => !heldAcross.includes(id));

      await proxy.stop();
      const cutAt = Date.now();
      release(finishing.slice(0, 4));
      await until(() => agentA.running + agentB.running === 6, 'four agents returned while the database is down');

      for (const app of apps) await expectUnavailable(app, { method: 'GET', url: '/health' });
      await expectUnavailable(a.app, { method: 'GET', url: `/api/v1/task/${ids[0]}` });
      await expectUnavailable(b.app, { method: 'GET', url: '/api/v1/tasks' });
      await expectUnavailable(a.app, { method: 'GET', url: '/api/v1/usage/overall?days=1' });
      await expectUnavailable(b.app, { method: 'GET', url: '/api/v1/usage/metrics/tasks' });
      await expectUnavailable(a.app, { method: 'POST', url: '/api/v1/task/submit', payload: submitBody('quick', { user_id: 'refused-while-down' }) });

      // LLM calls made while the database is down: their usage records wait in the sink's queue.
      const llm = a.app.get(LlmClientFactory).forUser('outage-user');
      for (let i = 0; i < 3; i++) await llm.chat({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `during the outage ${i}` }] });

      await sleep(Math.max(0, cutAt + OUTAGE_MS / 2 - Date.now()));
      release(finishing.slice(4));
      await until(() => agentA.running + agentB.running === 2, 'eight agents returned while the database is down');
      await expectUnavailable(b.app, { method: 'GET', url: '/health' });
      await sleep(Math.max(0, cutAt + OUTAGE_MS - Date.now()));
      // Every heartbeat of the outage failed: A's two running rows now look stale by far more than STALE_AFTER_MS.
      await proxy.start();
      const restoredAt = Date.now();

      // A task of a worker that really died: the reapers must still work after the outage.
      const orphan = '44444444-4444-4444-8444-444444444444';
      await insertTaskRow(a.app.get<DataSource>(getDataSourceToken()), {
        id: orphan,
        status: 'running',
        bugDescription: 'orphan',
        workerId: 'dead-host:1:dead',
        heartbeatAtMs: Date.now() - 10 * 60_000,
      });
      expect(await waitForTask(a.app, orphan, isFinal, { timeoutMs: 30_000 })).toMatchObject({ status: 'failed', failure_reason: 'interrupted' });
      // Both replicas' reapers have had their chance (stale window after each one's first heartbeat).
      await until(() => Date.now() > restoredAt + STALE_AFTER_MS + 3 * SLOW_POLL_MS, 'both stale windows passed', 30_000);
      for (const id of heldAcross) {
        expect((await a.app.inject({ method: 'GET', url: `/api/v1/task/${id}` })).json(), `held task ${id}`).toMatchObject({ status: 'running', failure_reason: null });
      }
      release(heldAcross);

      for (const id of ids) {
        const task = await waitForTask(b.app, id, isFinal, { timeoutMs: 30_000 });
        expect(task, `task ${id}`).toMatchObject({ status: 'succeeded', failure_reason: null, ...{ patch: heldOutcome(id).patch, test_output_tail: heldOutcome(id).testOutputTail } });
      }
      const interrupted = await direct.query(`SELECT id FROM tasks WHERE failure_reason = 'interrupted' AND id <> $1`, [orphan]);
      expect(interrupted.rows).toEqual([]);
      expect((await direct.query(`SELECT COUNT(*) AS n FROM tasks WHERE user_id = 'refused-while-down'`)).rows[0].n).toBe('0');

      for (const app of apps) {
        const health = await app.inject({ method: 'GET', url: '/health' });
        expect(health.statusCode).toBe(200);
        expect(health.json()).toMatchObject({ status: 'ok', info: { database: { status: 'up' } } });
      }
      expect((await a.app.inject({ method: 'POST', url: '/api/v1/task/submit', payload: submitBody('quick') })).statusCode).toBe(202);

      // One usage record per call the provider received: none lost in the outage, none duplicated.
      await a.app.get(UsageRecorder).flush();
      await b.app.get(UsageRecorder).flush();
      const calls = fake.chatRequests().length;
      expect(calls).toBe(13);
      const usage = await direct.query<{ n: string; d: string; outage: string }>(
        `SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS d, SUM(CASE WHEN user_id = 'outage-user' THEN 1 ELSE 0 END) AS outage FROM llm_usage`,
      );
      expect(usage.rows[0]).toEqual({ n: String(calls), d: String(calls), outage: '3' });
      for (const app of apps) expect(app.get(UsageRecorder).stats().find((s) => s.sink === 'database')).toMatchObject({ dropped: 0, queued: 0 });
    } finally {
      agentA.releaseAll();
      agentB.releaseAll();
      await b?.close();
      await a.close();
    }
  }, 240_000);

  it('shutdown while an end state cannot be stored gives up after its deadline; the row is reaped as interrupted later', async () => {
    const viaProxy = new URL(db.url);
    viaProxy.port = String(proxy.port);
    const env = {
      DATABASE_URL: viaProxy.toString(),
      TASK_POLL_INTERVAL_MS: '100',
      TASK_STALE_AFTER_MS: '3000',
      TASK_SHUTDOWN_GRACE_MS: '0',
      SHUTDOWN_DRAIN_TIMEOUT_MS: '1000',
    };
    const agent = new ScriptedAgent();
    const first = await createTestApp({ env, override: (m) => m.overrideProvider(TASK_AGENTS).useValue([agent]) });
    let id: string;
    try {
      const res = await first.app.inject({ method: 'POST', url: '/api/v1/task/submit', payload: submitBody('hold') });
      id = res.json().task_id;
      await until(() => agent.started.includes(id), 'task running');
      await proxy.stop();
      agent.release(id);
      await until(() => agent.running === 0, 'agent returned while the database is down');
    } finally {
      // Bounded: the end state is retried until grace + 10 s, then given up (logged), so close() returns.
      await first.close();
    }
    await proxy.start();
    const row = await direct.query(`SELECT status FROM tasks WHERE id = $1`, [id!]);
    expect(row.rows[0].status).toBe('running');

    const second = await createTestApp({ env, override: (m) => m.overrideProvider(TASK_AGENTS).useValue([new ScriptedAgent()]) });
    try {
      expect(await waitForTask(second.app, id!, isFinal, { timeoutMs: 30_000 })).toMatchObject({ status: 'failed', failure_reason: 'interrupted' });
    } finally {
      await second.close();
    }
  }, 90_000);
});
