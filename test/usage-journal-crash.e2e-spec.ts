import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { USAGE_ID_HEADER } from '../src/modules/llm/llm-client';
import { PricingService } from '../src/modules/llm/pricing/pricing.service';
import { TokenEstimator } from '../src/modules/llm/token-estimator';
import type { SimulatedRequest } from '../src/simulator/openai-compatible-server';
import { FakeOpenAi } from './fixtures/fake-openai';
import { sqlite, TcpProxy, waitFor } from './support/pipeline';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';
import { buildService, freePort, ServiceProcess, startService, waitForHttp } from './support/service-process';
import { createBuggyRepo } from './support/tasks';
import { sandboxReachableTempDir } from './support/scratch';

/** A usage row as both databases give it back, normalised. */
interface Row {
  id: string;
  status: string;
  error_type: string | null;
  estimated: boolean;
  input_tokens: number;
  output_tokens: number;
  cost_nanos: number | null;
  latency_ms: number;
}
const COLUMNS = 'id, status, error_type, estimated, input_tokens, output_tokens, cost_nanos, latency_ms';
const normalise = (r: Record<string, unknown>): Row => ({
  id: String(r.id),
  status: String(r.status),
  error_type: (r.error_type as string | null) ?? null,
  estimated: r.estimated === true || r.estimated === 1,
  input_tokens: Number(r.input_tokens),
  output_tokens: Number(r.output_tokens),
  cost_nanos: r.cost_nanos === null ? null : Number(r.cost_nanos),
  latency_ms: Number(r.latency_ms),
});

interface Database {
  env: Record<string, string>;
  rows(): Promise<Row[]>;
}

function sqliteDatabase(file: string): Database {
  return {
    env: { DATABASE_URL: `sqlite:${file}` },
    rows: async () => {
      const db = sqlite(file);
      try {
        return (await db.all<Record<string, unknown>>(`SELECT ${COLUMNS} FROM llm_usage`)).map(normalise);
      } catch (err) {
        if (/no such table/.test(String(err))) return [];
        throw err;
      } finally {
        await db.close();
      }
    },
  };
}

function postgresDatabase(url: string, serviceUrl = url): Database {
  return {
    env: { DATABASE_URL: serviceUrl },
    rows: async () => {
      const c = new Client({ connectionString: url });
      await c.connect();
      try {
        return (await c.query(`SELECT ${COLUMNS} FROM llm_usage`)).rows.map(normalise);
      } catch (err) {
        if (/does not exist/.test(String(err))) return [];
        throw err;
      } finally {
        await c.end();
      }
    },
  };
}

// The service sends each call's usage record id with its provider request.
const usageId = (r: SimulatedRequest) => String(r.headers[USAGE_ID_HEADER.toLowerCase()] ?? '');
const PROMPT_TOKENS = 1234;
/** A call answered this long before the kill has had its answer read and its end journaled. */
const SETTLE_MS = 1_000;

/**
 * A provider that answers after a delay and tracks, by the usage id the service sends with each
 * request, which requests it has answered: a request not answered when the service is killed
 * was in flight, and the service cannot have seen its answer.
 */
async function slowProvider(delayMs: () => number) {
  /** Usage id → when the provider began sending its answer (the service sees it a moment later). */
  const answered = new Map<string, number>();
  const fake = await FakeOpenAi.start({
    defaultReply: async (req) => {
      await sleep(delayMs());
      answered.set(usageId(req), Date.now());
      return { content: 'no idea', usage: { prompt_tokens: PROMPT_TOKENS, completion_tokens: 56 } };
    },
  });
  const ids = () => fake.chatRequests().map(usageId);
  /** Calls answered at least `ms` ago: their end is journaled by now, unless the service is stuck. */
  const answeredBefore = (ms: number) => ids().filter((id) => (answered.get(id) ?? Infinity) <= Date.now() - ms);
  const request = (id: string) => fake.chatRequests().find((r) => usageId(r) === id);
  return { fake, answered, request, ids, answeredBefore, inFlight: () => ids().filter((id) => !answered.has(id)) };
}

async function submitTasks(base: string, repo: { path: string; testCommand: string }, n: number, maxAttempts: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${base}/api/v1/task/submit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ repo_url: repo.path, bug_description: `add(2, 3) returns -1 instead of 5 (#${i})`, test_command: repo.testCommand, max_attempts: maxAttempts }),
    });
    expect(res.status, await res.clone().text()).toBe(202);
    ids.push(((await res.json()) as { task_id: string }).task_id);
  }
  return ids;
}

const taskStatus = async (base: string, id: string) => ((await (await fetch(`${base}/api/v1/task/${id}`)).json()) as { status: string }).status;

function serviceEnv(dir: string, db: Database, fake: FakeOpenAi, over: Record<string, string> = {}): Record<string, string> {
  return {
    ...db.env,
    USAGE_JOURNAL_DIR: join(dir, 'journal'),
    OPENAI_BASE_URL: fake.baseUrl,
    OPENAI_API_KEY: 'sk-test',
    OPENAI_MAX_RETRIES: '0',
    TASK_POLL_INTERVAL_MS: '100',
    TASK_DEFAULT_MODEL: 'gpt-4o-mini',
    TASK_WORKSPACE_DIR: join(dir, 'workspaces'),
    ...over,
  };
}

async function start(dir: string, env: Record<string, string>): Promise<{ svc: ServiceProcess; base: string }> {
  const port = await freePort();
  const svc = startService({ cwd: dir, env: { ...env, PORT: String(port) } });
  const base = `http://127.0.0.1:${port}`;
  await waitForHttp(`${base}/health`, 60_000, svc);
  return { svc, base };
}

beforeAll(() => buildService(), 300_000);

/**
 * kill -9 of the built service while many tasks' LLM calls are in flight and finished calls'
 * records wait in the in-memory queue; then a restart. Every request the provider received must
 * have exactly one usage record; every call in flight at the kill is `interrupted`, `estimated`,
 * with its locally counted prompt at the input rate.
 */
function crashUnderLoad(makeDb: (dir: string) => Promise<Database & { drop?: () => Promise<void> }>) {
  let dir: string;
  let db: Database & { drop?: () => Promise<void> };
  let provider: Awaited<ReturnType<typeof slowProvider>>;
  const pricing = new PricingService({ provider: 'openai', pricingFile: '/nonexistent/pricing.json' });

  beforeAll(async () => {
    dir = sandboxReachableTempDir('asa-crash-');
    db = await makeDb(dir);
    provider = await slowProvider(() => 400 + Math.floor(Math.random() * 800));
  }, 300_000);
  afterAll(async () => {
    await provider?.fake.close();
    await db?.drop?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('records every provider call exactly once after SIGKILL and a restart; calls in flight are interrupted and estimated', async () => {
    const repo = createBuggyRepo(dir);
    const env = serviceEnv(dir, db, provider.fake, {
      TASK_CONCURRENCY: '16',
      // Finished calls' records stay in the memory queue: without the journal, the kill loses them.
      USAGE_FLUSH_INTERVAL_MS: '60000',
      USAGE_BATCH_SIZE: '100000',
    });
    const first = await start(dir, env);
    let inFlightAtKill: string[] = [];
    let answeredAtKill: string[] = [];
    let settledAtKill: string[] = [];
    let requestedAtKill: string[] = [];
    try {
      const taskIds = await submitTasks(first.base, repo, 16, 10);
      await waitFor('20 provider calls with 4 in flight', () => provider.ids().length >= 20 && provider.inFlight().length >= 4, 150_000).catch(async (err: Error) => {
        // Say what was seen: how far the calls got, the tasks' states and the service's last words.
        const states = await Promise.all(taskIds.map((id) => taskStatus(first.base, id).catch(() => '?')));
        throw new Error(`${err.message}: ${provider.ids().length} calls, ${provider.inFlight().length} in flight; tasks ${states.join(',')}\n${first.svc.output().split('\n').slice(-40).join('\n')}`);
      });
      first.svc.child.kill('SIGKILL');
      inFlightAtKill = provider.inFlight();
      requestedAtKill = provider.ids();
      answeredAtKill = provider.ids().filter((id) => provider.answered.has(id));
      settledAtKill = provider.answeredBefore(SETTLE_MS);
      expect(await first.svc.exited).toEqual({ code: null, signal: 'SIGKILL' });
    } finally {
      if (first.svc.child.exitCode === null && first.svc.child.signalCode === null) await first.svc.stop('SIGKILL');
    }
    expect(inFlightAtKill.length).toBeGreaterThanOrEqual(4);
    // Finished calls whose records were still in the memory queue (a task's first call flushes
    // it to read the task's spend; later calls leave their records queued for a minute).
    const storedAtKill = new Set((await db.rows()).map((r) => r.id));
    const queuedAtKill = answeredAtKill.filter((id) => !storedAtKill.has(id));
    // Often some, but not always: each call's budget check flushes the queue, so what is queued at
    // the kill is what was answered since the last call started. Each one is checked below.
    const settledQueued = settledAtKill.filter((id) => !storedAtKill.has(id));

    // Restart: the journal is replayed before the service answers.
    const second = await start(dir, serviceEnv(dir, db, provider.fake));
    try {
      // Logged before the API listened; the pipe may deliver it a moment after /health answered.
      await waitFor('the replay log line', () => /usage journal replayed/.test(second.svc.output()), 10_000);
      await waitFor('every provider call to be stored', async () => {
        const stored = new Set((await db.rows()).map((r) => r.id));
        return provider.ids().every((id) => stored.has(id));
      }, 30_000);
    } finally {
      await second.svc.stop('SIGTERM');
    }

    const rows = await db.rows();
    const byId = new Map(rows.map((r) => [r.id, r]));
    const requested = provider.ids();
    expect(new Set(requested).size).toBe(requested.length); // one provider request per call
    expect(byId.size).toBe(rows.length); // one row per id
    for (const id of requested) expect(byId.has(id), `usage record of provider call ${id}`).toBe(true);
    // A call killed after its start was journaled but before its request left is recorded too:
    // the service cannot know whether the provider got it, so it counts it (as interrupted).
    const unknownToProvider = rows.filter((r) => !requested.includes(r.id));
    for (const r of unknownToProvider) expect(r).toMatchObject({ error_type: 'interrupted', estimated: true });
    expect(unknownToProvider.length).toBeLessThanOrEqual(16);

    // Their prompt: the exact count the worker journaled once the call had lasted 100 ms, or, for a
    // call cut before that count reached the journal (the first calls after a start wait for the
    // worker thread to load its encodings), the upper bound admission used.
    const estimator = new TokenEstimator();
    for (const id of inFlightAtKill) {
      const r = byId.get(id)!;
      expect(r, `call ${id} in flight at the kill`).toMatchObject({ status: 'error', error_type: 'interrupted', estimated: true, output_tokens: 0 });
      const body = provider.request(id)!.body;
      const exact = estimator.countChatPrompt(body);
      const bound = estimator.chatPromptBound(body);
      expect(bound).toBeGreaterThan(exact);
      expect([exact, bound], `call ${id}: prompt tokens charged`).toContain(r.input_tokens);
      const quote = pricing.price({ inputTokens: r.input_tokens, cachedInputTokens: 0, cacheWriteTokens: 0, outputTokens: 0, reasoningTokens: 0 }, ['gpt-4o-mini']);
      expect(r.cost_nanos).toBe(quote.costNanos);
      expect(r.cost_nanos).toBeGreaterThan(0);
    }
    // Calls answered before the kill were in the memory queue; the journal brought them back.
    const succeeded = rows.filter((r) => r.status === 'success');
    expect(succeeded.length).toBeGreaterThan(0);
    for (const id of settledQueued) expect(byId.get(id)?.status, `queued call ${id}`).toBe('success');
    // A call answered just before the kill may not have had its answer read and journaled yet:
    // it is either a success or interrupted and estimated, never lost or counted twice.
    for (const id of queuedAtKill) {
      const r = byId.get(id)!;
      if (r.status !== 'success') expect(r, `call ${id} answered just before the kill`).toMatchObject({ error_type: 'interrupted', estimated: true });
    }
    // Tasks still queued at the kill are run by the restarted service: its own calls succeed too.
    for (const r of succeeded) {
      if (requestedAtKill.includes(r.id)) expect(answeredAtKill).toContain(r.id);
      expect(r).toMatchObject({ input_tokens: PROMPT_TOKENS, output_tokens: 56, estimated: false });
    }
    // Everything is in the database: the journal has nothing left but an empty folder.
    expect(readdirSync(join(dir, 'journal')).filter((f) => f.startsWith('segment-'))).toEqual([]);
  }, 240_000);
}

describe('usage journal: kill -9 under load (SQLite, real process)', () => {
  crashUnderLoad(async (dir) => sqliteDatabase(join(dir, 'asa.db')));
});

// USAGE_JOURNAL_SYNC=os: a start is waited for only until the operating system has it, which is
// what a killed process needs (the kernel still writes its pages); only a power loss needs the disk.
describe('usage journal: kill -9 under load with USAGE_JOURNAL_SYNC=os (SQLite, real process)', () => {
  crashUnderLoad(async (dir) => {
    const db = sqliteDatabase(join(dir, 'asa.db'));
    return { ...db, env: { ...db.env, USAGE_JOURNAL_SYNC: 'os' } };
  });
});

describePostgres('usage journal: kill -9 under load (real process)', () => {
  crashUnderLoad(async () => {
    const scratch: ScratchDatabase = await createScratchPostgres();
    return { ...postgresDatabase(scratch.url), drop: () => scratch.drop() };
  });
});

describePostgres('usage journal: SIGTERM while the database is unreachable (real process)', () => {
  let dir: string;
  let scratch: ScratchDatabase;
  let proxy: TcpProxy;
  let provider: Awaited<ReturnType<typeof slowProvider>>;

  beforeAll(async () => {
    dir = sandboxReachableTempDir('asa-pgdown-');
    scratch = await createScratchPostgres();
    proxy = new TcpProxy(Number(new URL(scratch.url).port || 5432));
    await proxy.start();
    provider = await slowProvider(() => 0);
  }, 300_000);
  afterAll(async () => {
    await provider?.fake.close();
    await proxy?.stop();
    await scratch?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the undrained records in the journal, and the next start with the database back writes them all', async () => {
    const viaProxy = new URL(scratch.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const db = postgresDatabase(scratch.url, viaProxy.toString());
    const repo = createBuggyRepo(dir);
    const first = await start(dir, serviceEnv(dir, db, provider.fake, { USAGE_FLUSH_INTERVAL_MS: '60000', USAGE_BATCH_SIZE: '100000', SHUTDOWN_DRAIN_TIMEOUT_MS: '2000', TASK_CONCURRENCY: '1' }));
    try {
      // One task: only its first call flushes the queue (to read the task's spend), so the
      // records of all 8 calls are still queued when the database goes.
      const tasks = await submitTasks(first.base, repo, 1, 8);
      await waitFor('the tasks to finish', async () => {
        for (const id of tasks) if (!['succeeded', 'failed', 'cancelled'].includes(await taskStatus(first.base, id))) return false;
        return true;
      }, 60_000);
      expect(provider.ids()).toHaveLength(8);
      expect(await db.rows()).toHaveLength(0);
      await proxy.stop(); // the database is gone
      expect(await first.svc.stop('SIGTERM')).toEqual({ code: null, signal: 'SIGTERM' });
    } finally {
      if (first.svc.child.exitCode === null && first.svc.child.signalCode === null) await first.svc.stop('SIGKILL');
    }
    const log = first.svc.output();
    expect(log).toMatch(/8 usage records not yet in the database are kept in the usage journal/);
    expect(log).not.toMatch(/dropped \d+ usage records for this sink/);
    expect(log).toMatch(/database 0 written, 8 kept/);

    await proxy.start();
    const second = await start(dir, serviceEnv(dir, db, provider.fake));
    try {
      await waitFor('the replay log line', () => /usage journal replayed \(\d+ segments\): 8 finished calls not yet stored/.test(second.svc.output()), 10_000);
      await waitFor('the kept records to be stored', async () => (await db.rows()).length >= 8, 30_000);
    } finally {
      await second.svc.stop('SIGTERM');
    }
    const rows = await db.rows();
    expect(rows.map((r) => r.id).sort()).toEqual([...provider.ids()].sort());
    for (const r of rows) expect(r).toMatchObject({ status: 'success', input_tokens: PROMPT_TOKENS, output_tokens: 56 });
  }, 180_000);
});

describe('usage journal: one process per journal folder (real process)', () => {
  let dir: string;
  let fake: FakeOpenAi;

  beforeAll(async () => {
    dir = sandboxReachableTempDir('asa-journal-lock-');
    fake = await FakeOpenAi.start();
  });
  afterAll(async () => {
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to start on a journal folder a live process holds, naming the folder; after a kill -9 the next start takes it over', async () => {
    const journal = join(dir, 'journal');
    const first = await start(dir, serviceEnv(dir, sqliteDatabase(join(dir, 'one.db')), fake));
    try {
      const port = await freePort();
      const second = startService({ cwd: dir, env: { ...serviceEnv(dir, sqliteDatabase(join(dir, 'two.db')), fake), PORT: String(port) } });
      expect(await second.exited).toEqual({ code: 1, signal: null });
      expect(second.output()).toContain(`usage journal folder ${journal} is in use by process ${first.svc.child.pid}`);
      expect(second.output()).toContain('USAGE_JOURNAL_DIR');
    } finally {
      await first.svc.stop('SIGKILL');
    }
    const third = await start(dir, serviceEnv(dir, sqliteDatabase(join(dir, 'one.db')), fake));
    await third.svc.stop('SIGTERM');
    expect(third.svc.output()).toMatch(/usage journal in .*\(1 segments left by a previous run\)/);
  }, 120_000);
});
