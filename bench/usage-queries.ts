/**
 * Usage queries over HTTP against the built service (node main.js in its own process, as
 * deployed), on SQLite and PostgreSQL, at 100,000, 1,000,000 and 10,000,000 usage rows (quick:
 * 10,000): p50/p99 and response size of each query, and the service's RSS idle, under the
 * queries and after them. The data set grows in place between sizes (see usage-generator.ts).
 *
 *   npx ts-node --transpile-only bench/usage-queries.ts [--quick] [--out result.json]
 *
 * BENCH_MAX_ROWS stops at a smaller size (the queries read raw rows until the rollups come: at
 * 10 M rows one request takes minutes). Each query is sampled for at most QUERY_BUDGET_MS per
 * size (at least one sample), after one warm-up request below 1 M rows.
 *
 * PostgreSQL: a scratch database `asa_bench_<pid>` is created through BENCH_POSTGRES_ADMIN_URL
 * (default postgres://postgres@127.0.0.1:5432/postgres) and dropped at the end; unreachable, the
 * PostgreSQL half is skipped and says why.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { Bench } from 'tinybench';
import { buildService, freePort, startService, waitForHttp, type ServiceProcess } from '../test/support/service-process';
import { ROOT, round, rssMb, rssSampler, runSection } from './support/common';
import { DAYS, loadUsageGenerator, MODELS, USERS, type UsageTarget } from './support/usage-generator';

const ADMIN_URL = process.env.BENCH_POSTGRES_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const MAX_ROWS = Number(process.env.BENCH_MAX_ROWS ?? Infinity);
const QUERY_BUDGET_MS = 45_000;

/** The queries a dashboard makes, by name. */
function queriesFor(tasks: number): Record<string, string> {
  return {
    'overall 30 d': '/api/v1/usage/overall?days=30',
    'overall 90 d': '/api/v1/usage/overall?days=90',
    'user 30 d': '/api/v1/usage/user/user-7?days=30',
    'timeseries 30 d by model': '/api/v1/usage/timeseries?days=30&interval=day&group_by=model',
    task: `/api/v1/usage/task/bench-task-${1234 % tasks}`,
    'task metrics 30 d': '/api/v1/usage/metrics/tasks?days=30',
  };
}

export interface QueryFigure {
  readonly database: 'sqlite' | 'postgres';
  readonly rows: number;
  readonly query: string;
  readonly samples: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly bytes: number;
}

export interface RssFigure {
  readonly database: 'sqlite' | 'postgres';
  readonly rows: number;
  readonly idleMb: number;
  readonly underQueriesMb: number;
  readonly afterQueriesMb: number;
}

interface Database {
  readonly type: 'sqlite' | 'postgres';
  readonly url: string;
  open(): Promise<UsageTarget & { close(): Promise<void> }>;
  drop(): Promise<void>;
}

function sqliteDb(dir: string): Database {
  const file = join(dir, 'bench.db');
  return {
    type: 'sqlite',
    url: `sqlite:${file}`,
    async open() {
      const sqlite3 = await import('sqlite3');
      const db = await new Promise<import('sqlite3').Database>((res, rej) => {
        const d = new sqlite3.default.Database(file, (err) => (err ? rej(err) : res(d)));
      });
      const exec = (sql: string) => new Promise<void>((res, rej) => db.exec(sql, (err) => (err ? rej(err) : res())));
      await exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;');
      return { type: 'sqlite' as const, exec, close: () => new Promise<void>((res) => db.close(() => res())) };
    },
    async drop() {},
  };
}

async function postgresDb(): Promise<Database> {
  const name = `asa_bench_${process.pid}`;
  const admin = new Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name}`);
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    type: 'postgres',
    url: url.toString(),
    async open() {
      const c = new Client({ connectionString: url.toString() });
      let lost: Error | null = null;
      c.on('error', (err) => (lost = err)); // a connection the server ended: reported by the next statement
      await c.connect();
      return {
        type: 'postgres' as const,
        exec: async (sql: string) => {
          if (lost) throw lost;
          await c.query(sql);
        },
        close: () => c.end().catch(() => undefined),
      };
    },
    async drop() {
      const a = new Client({ connectionString: ADMIN_URL });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).finally(() => a.end());
    },
  };
}

async function main(quick: boolean) {
  const sizes = (quick ? [10_000] : [100_000, 1_000_000, 10_000_000]).filter((n) => n <= MAX_ROWS);
  const tasks = quick ? 1_000 : 100_000;
  const QUERIES = queriesFor(tasks);
  const samplesAt = (rows: number) => (quick ? 5 : rows <= 100_000 ? 30 : rows <= 1_000_000 ? 15 : 6);
  const main = buildService(join(ROOT, 'node_modules/.cache/asa-bench-build'));
  const generator = loadUsageGenerator();
  const queries: QueryFigure[] = [];
  const rss: RssFigure[] = [];
  const notes: string[] = [];
  const loads: { database: string; rows: number; seconds: number }[] = [];

  const databases: (() => Promise<Database>)[] = [
    async () => sqliteDb(mkdtempSync(join(tmpdir(), 'asa-bench-queries-'))),
    postgresDb,
  ];
  for (const make of databases) {
    let db: Database;
    try {
      db = await make();
    } catch (err) {
      notes.push(`PostgreSQL skipped: ${(err as Error).message}`);
      continue;
    }
    // A database that fails (say, PostgreSQL restarted by other work on the machine) is reported in
    // the notes; the other database's figures stand.
    const dir = mkdtempSync(join(tmpdir(), 'asa-bench-svc-'));
    writeFileSync(join(dir, 'keys.json'), '{ "keys": [] }\n');
    mkdirSync(join(dir, 'workspaces'));
    const port = await freePort();
    const env = {
      PORT: String(port),
      DATABASE_URL: db.url,
      API_KEYS_FILE: join(dir, 'keys.json'),
      USAGE_JOURNAL_DIR: join(dir, 'journal'),
      BILLING_EXPORT_DIR: join(dir, 'exports'),
      BILLING_DAILY_CRON: '',
      BILLING_MONTHLY_CRON: '',
      TASK_WORKSPACE_DIR: join(dir, 'workspaces'),
      TASK_SANDBOX: 'none',
      LOG_LEVEL: 'warn',
    };
    const base = `http://127.0.0.1:${port}`;
    const boot = async (): Promise<ServiceProcess> => {
      const svc = startService({ cwd: dir, env, main });
      await waitForHttp(`${base}/health`, 120_000, svc);
      return svc;
    };
    try {
      // The first start runs the migrations; the data is then written with the service stopped.
      await (await boot()).stop();
      const spec = { startMs: Date.now() - DAYS * 86_400_000, tasks };
      let have = 0;
      for (const rows of sizes) {
        const target = await db.open();
        const loadStarted = Date.now();
        await generator.generate(target, spec, have, rows);
        if (db.type === 'postgres') await target.exec('ANALYZE');
        await target.close();
        loads.push({ database: db.type, rows, seconds: round((Date.now() - loadStarted) / 1000, 1) });
        console.error(`${db.type}: ${rows} rows loaded in ${loads[loads.length - 1].seconds} s`);
        have = rows;

        const svc = await boot();
        const pid = svc.child.pid!;
        try {
          await sleep(2_000);
          const idleMb = rssMb(pid);
          const peak = rssSampler(pid);
          for (const [name, path] of Object.entries(QUERIES)) {
            let bytes = 0;
            const bench = new Bench({
              iterations: samplesAt(rows),
              time: 0,
              warmup: rows < 1_000_000,
              warmupIterations: 1,
              warmupTime: 0,
              signal: AbortSignal.timeout(QUERY_BUDGET_MS),
            });
            bench.add(name, async () => {
              const res = await fetch(`${base}${path}`);
              const body = await res.text();
              if (res.status !== 200) throw new Error(`${path} answered ${res.status}: ${body.slice(0, 300)}`);
              bytes = Buffer.byteLength(body);
            });
            await bench.run();
            const result = bench.tasks[0].result;
            if (result.state !== 'completed' && result.state !== 'aborted-with-statistics') {
              throw new Error(`${db.type} ${rows} ${name}: ${result.state}${'error' in result ? `: ${String(result.error)}` : ''}`);
            }
            queries.push({ database: db.type, rows, query: name, samples: result.latency.samplesCount, p50Ms: round(result.latency.p50, 1), p99Ms: round(result.latency.p99, 1), bytes });
            console.error(JSON.stringify(queries[queries.length - 1]));
          }
          const underQueriesMb = peak.stop();
          await sleep(2_000);
          rss.push({ database: db.type, rows, idleMb, underQueriesMb, afterQueriesMb: rssMb(pid) });
        } finally {
          await svc.stop();
        }
      }
    } catch (err) {
      notes.push(`${db.type === 'sqlite' ? 'SQLite' : 'PostgreSQL'} stopped early: ${(err as Error).message.split('\n')[0]}`);
      console.error(err);
    } finally {
      await db.drop().catch((err: unknown) => notes.push(`could not drop the scratch database: ${(err as Error).message}`));
      rmSync(dir, { recursive: true, force: true });
      if (db.type === 'sqlite') rmSync(db.url.slice('sqlite:'.length).replace(/\/bench\.db$/, ''), { recursive: true, force: true });
    }
  }
  return { generator: generator.name, data: { days: DAYS, models: MODELS, users: USERS, tasks }, sizes, queries: QUERIES, figures: queries, rss, loads, notes };
}

if (require.main === module) runSection(main);
