import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { getDataSourceToken } from '@nestjs/typeorm';
import { TaskStore } from '../src/modules/tasks/task-store.service';
import { TaskRunner } from '../src/modules/tasks/task-runner.service';
import { TASK_AGENTS } from '../src/plugins/sdk';
import { createTestApp, TestApp } from './support/create-app';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';
import { expectedListOrder, insertTaskRow, isFinal, ScriptedAgent, until, waitForTask } from './support/tasks';

const body = (bug: string, extra: Record<string, unknown> = {}) => ({
  repo_url: 'https://github.com/example/repo',
  bug_description: bug,
  test_command: 'true',
  ...extra,
});

async function submit(t: TestApp, bug: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await t.app.inject({ method: 'POST', url: '/api/v1/task/submit', payload: body(bug, extra) });
  expect(res.statusCode).toBe(202);
  return res.json().task_id;
}

async function statusOf(t: TestApp, id: string): Promise<string> {
  return (await t.app.inject({ method: 'GET', url: `/api/v1/task/${id}` })).json().status;
}

async function metricValue(t: TestApp, name: string, status: string): Promise<number> {
  const text = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
  const m = new RegExp(`^${name}\\{status="${status}"\\} (\\S+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/** A row left `running` by a process that died (no heartbeat since `heartbeatAtMs`). */
async function insertOrphan(ds: DataSource, id: string, heartbeatAtMs: number | null, workerId = 'dead-host:1:abcd'): Promise<void> {
  await insertTaskRow(ds, { id, status: 'running', bugDescription: 'orphan', workerId, heartbeatAtMs });
}

describe('task queue (SQLite)', () => {
  it('runs at most TASK_CONCURRENCY tasks at once, oldest first, and starts the next when one ends', async () => {
    const agent = new ScriptedAgent();
    const t = await createTestApp({
      env: { TASK_CONCURRENCY: '2', TASK_POLL_INTERVAL_MS: '50', TASK_SHUTDOWN_GRACE_MS: '0' },
      override: (b) => b.overrideProvider(TASK_AGENTS).useValue([agent]),
    });
    try {
      const ids: string[] = [];
      // Apart by a few ms, so "oldest first" is decided by created_at, not by the id tie-break.
      for (let i = 0; i < 5; i++) {
        ids.push(await submit(t, 'hold'));
        await new Promise((r) => setTimeout(r, 3));
      }
      await until(() => agent.started.length === 2, 'two tasks started');
      // Several poll intervals later, still two: the others wait in the queue.
      await new Promise((r) => setTimeout(r, 300));
      expect(agent.started).toEqual(ids.slice(0, 2));
      expect(await Promise.all(ids.map((id) => statusOf(t, id)))).toEqual(['running', 'running', 'queued', 'queued', 'queued']);

      agent.release(ids[0]);
      await until(() => agent.started.length === 3, 'third task started after one ended');
      expect(agent.started[2]).toBe(ids[2]);
      for (let i = 1; i < 5; i++) {
        await until(() => agent.started.includes(ids[i]), `task ${i} started`);
        agent.release(ids[i]);
      }
      for (const id of ids) expect((await waitForTask(t.app, id, isFinal)).status).toBe('succeeded');
      expect(agent.maxRunning).toBe(2);
      expect(await metricValue(t, 'task_success_total', 'success')).toBe(5);
    } finally {
      agent.releaseAll();
      await t.close();
    }
  });

  it('restart: queued tasks run after it, a task left running by a dead process is failed as interrupted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'asa-restart-'));
    const env = { DATABASE_URL: `sqlite:${join(dir, 'asa.db')}`, TASK_CONCURRENCY: '1', TASK_POLL_INTERVAL_MS: '50', TASK_SHUTDOWN_GRACE_MS: '100' };
    const first = new ScriptedAgent();
    const a = await createTestApp({ env, override: (b) => b.overrideProvider(TASK_AGENTS).useValue([first]) });
    const orphan = '11111111-1111-4111-8111-111111111111';
    let running: string, queued: string;
    try {
      running = await submit(a, 'hold');
      await until(() => first.started.includes(running), 'first task running');
      queued = await submit(a, 'quick');
      expect(await statusOf(a, queued)).toBe('queued');
      // A row another process left behind when it was killed (it never ran its shutdown); heartbeat fresh.
      await insertOrphan(a.app.get<DataSource>(getDataSourceToken()), orphan, Date.now());
    } finally {
      // Shutdown: the running task gets TASK_SHUTDOWN_GRACE_MS, is then aborted and recorded as interrupted.
      await a.close();
    }
    expect(first.abortReasons.get(running!)).toBe('interrupted');

    const second = new ScriptedAgent();
    const b = await createTestApp({ env, override: (bb) => bb.overrideProvider(TASK_AGENTS).useValue([second]) });
    try {
      const o = (await b.app.inject({ method: 'GET', url: `/api/v1/task/${orphan}` })).json();
      expect(o).toMatchObject({ status: 'failed', failure_reason: 'interrupted' });
      expect(o.finished_at).not.toBeNull();
      const r = (await b.app.inject({ method: 'GET', url: `/api/v1/task/${running!}` })).json();
      expect(r).toMatchObject({ status: 'failed', failure_reason: 'interrupted' });
      expect((await waitForTask(b.app, queued!, isFinal)).status).toBe('succeeded');
      expect(second.started).toEqual([queued!]);
      expect(await metricValue(b, 'task_success_total', 'interrupted')).toBe(1);
    } finally {
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a start on SQLite ends the tasks of dead processes only, not those of a live process on the same file', async () => {
    // Found in a trial: a second process started on the same SQLite file (with its own journal
    // folder) marked the first one's running task interrupted while it went on making calls.
    const dir = mkdtempSync(join(tmpdir(), 'asa-live-owner-'));
    const env = { DATABASE_URL: `sqlite:${join(dir, 'asa.db')}`, TASK_POLL_INTERVAL_MS: '50' };
    const other = spawn('sleep', ['60']); // stands for the other service process, alive on this host
    const gone = spawn('true');
    await new Promise((r) => gone.once('exit', r));
    const live = '33333333-3333-4333-8333-333333333333';
    const dead = '44444444-4444-4444-8444-444444444444';
    try {
      const a = await createTestApp({ env });
      try {
        const ds = a.app.get<DataSource>(getDataSourceToken());
        await insertOrphan(ds, live, Date.now(), `${hostname()}:${other.pid}:abcd`);
        await insertOrphan(ds, dead, Date.now(), `${hostname()}:${gone.pid}:abcd`);
      } finally {
        await a.close();
      }
      const b = await createTestApp({ env });
      try {
        expect(await statusOf(b, live)).toBe('running');
        expect((await b.app.inject({ method: 'GET', url: `/api/v1/task/${dead}` })).json()).toMatchObject({ status: 'failed', failure_reason: 'interrupted' });
      } finally {
        await b.close();
      }
    } finally {
      other.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('shutdown ends a task whose agent ignores the abort as interrupted instead of leaving it running', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'asa-stubborn-'));
    const env = { DATABASE_URL: `sqlite:${join(dir, 'asa.db')}`, TASK_POLL_INTERVAL_MS: '50', TASK_SHUTDOWN_GRACE_MS: '0' };
    const agent = new ScriptedAgent();
    const a = await createTestApp({ env, override: (b) => b.overrideProvider(TASK_AGENTS).useValue([agent]) });
    const id = await submit(a, 'hold-ignore-abort');
    await until(() => agent.started.includes(id), 'task running');
    const ds = a.app.get<DataSource>(getDataSourceToken());
    await a.app.get(TaskRunner).onModuleDestroy();
    const [row] = await ds.query('SELECT status, failure_reason FROM tasks WHERE id = ?', [id]);
    expect(row).toEqual({ status: 'failed', failure_reason: 'interrupted' });
    agent.release(id);
    await a.close();
    rmSync(dir, { recursive: true, force: true });
  }, 20_000);
});

describePostgres('task queue', () => {
  let db: ScratchDatabase;
  beforeAll(async () => {
    db = await createScratchPostgres();
  });
  afterAll(() => db?.drop());

  it('two replicas on one database never run the same task twice', async () => {
    const env = { DATABASE_URL: db.url, TASK_CONCURRENCY: '3', TASK_POLL_INTERVAL_MS: '50' };
    const agentA = new ScriptedAgent();
    const agentB = new ScriptedAgent();
    const a = await createTestApp({ env, override: (b) => b.overrideProvider(TASK_AGENTS).useValue([agentA]) });
    const b = await createTestApp({ env, override: (bb) => bb.overrideProvider(TASK_AGENTS).useValue([agentB]) });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 24; i++) ids.push(await submit(i % 2 ? a : b, 'quick'));
      for (const id of ids) expect((await waitForTask(a.app, id, isFinal)).status).toBe('succeeded');
      const all = [...agentA.started, ...agentB.started];
      expect(all.sort()).toEqual([...ids].sort());
      expect(new Set(all).size).toBe(ids.length);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('lists newest first with the keyset cursor on PostgreSQL too', async () => {
    const agent = new ScriptedAgent();
    const t = await createTestApp({ env: { DATABASE_URL: db.url, TASK_POLL_INTERVAL_MS: '50' }, override: (b) => b.overrideProvider(TASK_AGENTS).useValue([agent]) });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push(await submit(t, 'quick', { user_id: 'pg-pager' }));
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: { statusCode: number; json(): { tasks: { task_id: string }[]; next_cursor: string | null } } = await t.app.inject({ method: 'GET', url: `/api/v1/tasks?user_id=pg-pager&limit=2${cursor ? `&cursor=${cursor}` : ''}` });
        expect(res.statusCode).toBe(200);
        seen.push(...res.json().tasks.map((x: { task_id: string }) => x.task_id));
        cursor = res.json().next_cursor;
      } while (cursor);
      expect(seen).toEqual(await expectedListOrder(t.app, ids));
      for (const id of ids) await waitForTask(t.app, id, isFinal);
    } finally {
      await t.close();
    }
  });

  it('racing claims: each queued row goes to exactly one claimer', async () => {
    const env = { DATABASE_URL: db.url, TASK_CONCURRENCY: '1', TASK_POLL_INTERVAL_MS: '60000' };
    const agent = new ScriptedAgent();
    const t = await createTestApp({ env, override: (b) => b.overrideProvider(TASK_AGENTS).useValue([agent]) });
    try {
      await t.app.get(TaskRunner).onModuleDestroy(); // no background workers: the test claims by hand
      const ds = t.app.get<DataSource>(getDataSourceToken());
      await ds.query('DELETE FROM tasks');
      const ids: string[] = [];
      for (let i = 0; i < 10; i++) ids.push(await submit(t, 'quick'));
      const store = t.app.get(TaskStore);
      const claims = await Promise.all(Array.from({ length: 30 }, (_, i) => store.claimNext(`worker-${i % 5}`, Date.now())));
      const won = claims.filter((c) => c !== null).map((c) => c!.id);
      expect(new Set(won).size).toBe(won.length);
      expect(won.sort()).toEqual([...ids].sort());
      const rows: { status: string; n: string }[] = await ds.query('SELECT status, COUNT(*) AS n FROM tasks GROUP BY status');
      expect(rows).toEqual([{ status: 'running', n: '10' }]);
    } finally {
      await t.close();
    }
  });

  it('a replica reaps only tasks whose worker stopped heartbeating', async () => {
    const env = { DATABASE_URL: db.url, TASK_CONCURRENCY: '1', TASK_POLL_INTERVAL_MS: '50', TASK_STALE_AFTER_MS: '1000' };
    const agent = new ScriptedAgent();
    const setup = await createTestApp({ env, override: (b) => b.overrideProvider(TASK_AGENTS).useValue([agent]) });
    const stale = '22222222-2222-4222-8222-222222222222';
    const alive = '33333333-3333-4333-8333-333333333333';
    try {
      await setup.app.get(TaskRunner).onModuleDestroy();
      const ds = setup.app.get<DataSource>(getDataSourceToken());
      await insertOrphan(ds, stale, Date.now() - 10 * 60_000);
      await insertOrphan(ds, alive, Date.now() + 60 * 60_000, 'other-replica:2:beef');
    } finally {
      await setup.close();
    }
    const t = await createTestApp({ env, override: (b) => b.overrideProvider(TASK_AGENTS).useValue([agent]) });
    try {
      // Reaped once this replica's own heartbeats have worked for a whole stale window (TASK_STALE_AFTER_MS).
      expect(await waitForTask(t.app, stale, isFinal, { timeoutMs: 15_000 })).toMatchObject({ status: 'failed', failure_reason: 'interrupted' });
      expect(await statusOf(t, alive)).toBe('running');
    } finally {
      await t.close();
    }
  });
});
