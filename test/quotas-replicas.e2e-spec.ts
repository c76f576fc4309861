import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { FakeOpenAi } from './fixtures/fake-openai';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';
import { buildService, freePort, ServiceProcess, startService, waitForHttp, taskServiceEnv } from './support/service-process';
import { createBuggyRepo } from './support/tasks';
import { sandboxReachableTempDir } from './support/scratch';

const LIMIT_USD = '0.012';
const LIMIT_NANOS = 12_000_000n;
const TASKS_PER_PROCESS = 6;

/**
 * Two built service processes on one PostgreSQL database run bug-fix tasks for one user under a
 * block rule with room for about four calls. Each call is held a second at the provider, so the
 * two processes' calls overlap. The spend recorded never passes the limit, the provider saw exactly
 * the recorded calls (refused ones never reached it), and refused tasks fail budget_exceeded.
 */
describePostgres('quota enforcement across two service processes', () => {
  let dir: string;
  let fake: FakeOpenAi;
  let db: ScratchDatabase;
  const procs: ServiceProcess[] = [];

  beforeAll(async () => {
    buildService();
    dir = sandboxReachableTempDir('asa-quota-replicas-');
    db = await createScratchPostgres();
    // Real cost close to the reserved worst case: the model uses its whole output allowance.
    fake = await FakeOpenAi.start({
      defaultReply: (req) => ({ content: 'no idea', delayMs: 1000, usage: { prompt_tokens: 1, completion_tokens: req.body.max_completion_tokens ?? req.body.max_tokens ?? 4096 } }),
    });
  }, 300_000);
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await fake?.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('never lets the spend pass the limit', async () => {
    const repo = createBuggyRepo(dir);
    writeFileSync(
      join(dir, 'quotas.json'),
      JSON.stringify({ rules: [{ id: 'pg-user-daily', scope: { user_id: 'u-pg' }, limit_usd: LIMIT_USD, window: 'day', action: 'block' }] }),
    );
    const bases: string[] = [];
    for (const name of ['a', 'b']) {
      const port = await freePort();
      mkdirSync(join(dir, name));
      const proc = startService({
        cwd: join(dir, name),
        env: {
          ...taskServiceEnv({ port, llmBaseUrl: fake.baseUrl, workspaceDir: join(dir, name, 'workspaces') }),
          DATABASE_URL: db.url,
          QUOTAS_FILE: join(dir, 'quotas.json'),
          TASK_CONCURRENCY: String(TASKS_PER_PROCESS),
          USAGE_FLUSH_INTERVAL_MS: '50',
        },
      });
      procs.push(proc);
      bases.push(`http://127.0.0.1:${port}`);
      // One at a time: both run the migrations on the same database.
      await waitForHttp(`${bases[bases.length - 1]}/health`, 90_000, proc);
    }

    const submit = async (base: string) => {
      const res = await fetch(`${base}/api/v1/task/submit`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ repo_url: repo.path, bug_description: 'add(2, 3) returns -1 instead of 5', test_command: repo.testCommand, max_attempts: 2, user_id: 'u-pg' }),
      });
      expect(res.status, await res.clone().text()).toBe(202);
      return { base, id: ((await res.json()) as { task_id: string }).task_id };
    };
    // Each process queues its own submissions and its workers pick them up at once.
    const tasks = await Promise.all(bases.flatMap((base) => Array.from({ length: TASKS_PER_PROCESS }, () => submit(base))));

    const deadline = Date.now() + 120_000;
    const finals: { status: string; failure_reason: string | null; failure_detail: string | null }[] = [];
    for (const t of tasks) {
      for (;;) {
        const task = (await (await fetch(`${t.base}/api/v1/task/${t.id}`)).json()) as (typeof finals)[number];
        if (['succeeded', 'failed', 'cancelled'].includes(task.status)) {
          finals.push(task);
          break;
        }
        if (Date.now() > deadline) throw new Error(`task ${t.id} did not finish: ${JSON.stringify(task)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }

    // Wait for the last usage batches to land, then read what was recorded.
    await new Promise((r) => setTimeout(r, 500));
    const client = new Client({ connectionString: db.url });
    await client.connect();
    let spent: bigint;
    let rows: number;
    let processes: number;
    try {
      const r = await client.query(`SELECT CAST(SUM(cost_nanos) AS TEXT) AS nanos, COUNT(*) AS n FROM llm_usage WHERE user_id = 'u-pg'`);
      spent = BigInt(r.rows[0].nanos ?? 0);
      rows = Number(r.rows[0].n);
      const c = await client.query(`SELECT reserved_nanos, reserved_prev_nanos FROM quota_counters WHERE rule_id = 'pg-user-daily'`);
      // Every reservation was settled.
      expect(c.rows.map((x) => [String(x.reserved_nanos), String(x.reserved_prev_nanos)])).toEqual([['0', '0']]);
      processes = new Set(tasks.map((t) => t.base)).size;
    } finally {
      await client.end();
    }

    const refused = finals.filter((f) => f.failure_reason === 'budget_exceeded');
    expect(processes).toBe(2);
    expect(spent).toBeLessThanOrEqual(LIMIT_NANOS);
    expect(spent).toBeGreaterThan(0n);
    expect(rows).toBeGreaterThan(0);
    // Refused calls never reached the provider and left no usage record.
    expect(fake.chatRequests()).toHaveLength(rows);
    expect(refused.length).toBeGreaterThan(0);
    for (const f of refused) expect(f.failure_detail).toMatch(/quota rule "pg-user-daily" \(user_id=u-pg, day window from .*\): spent [\d.]+ USD of its 0\.012000000 USD limit/);
    // Blocked calls are counted by the process that refused them; both processes had to refuse some.
    const blocked: number[] = [];
    for (const base of bases) {
      const text = await (await fetch(`${base}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('llm_blocked_requests_total{rule="pg-user-daily"}'));
      blocked.push(line ? Number(line.split(' ').pop()) : 0);
    }
    expect(blocked.every((n) => n > 0), `blocked per process: ${blocked}`).toBe(true);
    expect(blocked[0] + blocked[1]).toBeGreaterThanOrEqual(refused.length);
  }, 300_000);
});
