/**
 * Usage queries over HTTP against the built service (node main.js in its own process, as
 * deployed), on SQLite and PostgreSQL, at 100,000, 1,000,000 and 10,000,000 usage rows (quick:
 * 10,000): p50/p99 and response size of each query, and the service's RSS idle, under the
 * queries and after them. Each size is a fresh database filled by bench/generate-usage.ts (the
 * benchmarks' deterministic data, rollups included) while the service is stopped.
 *
 *   npx ts-node --transpile-only bench/usage-queries.ts [--quick] [--out result.json]
 *
 * BENCH_MAX_ROWS stops at a smaller size. Each query is sampled for at most QUERY_BUDGET_MS per
 * size (at least one sample), after one warm-up request below 1 M rows.
 *
 * PostgreSQL: a scratch database `asa_bench_<pid>_<rows>` per size is created through BENCH_POSTGRES_ADMIN_URL
 * (default postgres://postgres@127.0.0.1:5432/postgres) and dropped at the end; unreachable, the
 * PostgreSQL half is skipped and says why.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import 'reflect-metadata';
import { Client } from 'pg';
import { Bench } from 'tinybench';
import { DataSource } from 'typeorm';
import { parseDatabaseUrl } from '../src/config/database.config';
import { buildTypeOrmOptions } from '../src/database/typeorm-options';
import { buildService, freePort, startService, waitForHttp, type ServiceProcess } from '../test/support/service-process';
import { benchServiceEnv, ROOT, round, rssMb, rssSampler, runSection } from './support/common';
import { generateUsage } from './generate-usage';

/** The generator's defaults (bench/generate-usage.ts): the data set the issue names. */
const DAYS = 90;
const MODELS = 50;
const USERS = 1_000;

const ADMIN_URL = process.env.BENCH_POSTGRES_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const MAX_ROWS = Number(process.env.BENCH_MAX_ROWS ?? Infinity);
const QUERY_BUDGET_MS = 45_000;

/** The queries a dashboard makes, by name. */
function queriesFor(tasks: number): Record<string, string> {
  return {
    'overall 30 d': '/api/v1/usage/overall?days=30',
    'overall 90 d': '/api/v1/usage/overall?days=90',
    'user 30 d': '/api/v1/usage/user/user-7?days=30',
    'users 30 d, first page': '/api/v1/usage/users?days=30',
    'timeseries 30 d by model': '/api/v1/usage/timeseries?days=30&interval=day&group_by=model',
    task: `/api/v1/usage/task/gen-1-${1234 % tasks}`,
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
  drop(): Promise<void>;
}

function sqliteDb(dir: string): Database {
  return { type: 'sqlite', url: `sqlite:${join(dir, 'bench.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
}

async function postgresDb(rows: number): Promise<Database> {
  const name = `asa_bench_${process.pid}_${rows}`;
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
    async drop() {
      const a = new Client({ connectionString: ADMIN_URL });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).finally(() => a.end());
    },
  };
}

/** Fills a migrated, empty database with `rows` calls of the benchmarks' data set. */
async function fill(db: Database, rows: number, tasks: number): Promise<void> {
  const ds = await new DataSource({ ...buildTypeOrmOptions(parseDatabaseUrl(db.url)), logging: false }).initialize();
  try {
    await generateUsage(ds, { rows, tasks });
  } finally {
    await ds.destroy();
  }
}

async function main(quick: boolean) {
  const sizes = (quick ? [10_000] : [100_000, 1_000_000, 10_000_000]).filter((n) => n <= MAX_ROWS);
  const tasks = quick ? 1_000 : 100_000;
  const QUERIES = queriesFor(tasks);
  const samplesAt = (rows: number) => (quick ? 5 : rows <= 100_000 ? 30 : rows <= 1_000_000 ? 15 : 6);
  const main = buildService(join(ROOT, 'node_modules/.cache/asa-bench-build'));
  const queries: QueryFigure[] = [];
  const rss: RssFigure[] = [];
  const notes: string[] = [];
  const loads: { database: string; rows: number; seconds: number }[] = [];

  const makers: Record<Database['type'], (rows: number) => Promise<Database>> = {
    sqlite: async () => sqliteDb(mkdtempSync(join(tmpdir(), 'asa-bench-queries-'))),
    postgres: postgresDb,
  };
  for (const type of ['sqlite', 'postgres'] as const) {
    for (const rows of sizes) {
      let db: Database;
      try {
        db = await makers[type](rows);
      } catch (err) {
        notes.push(`PostgreSQL skipped: ${(err as Error).message}`);
        break;
      }
      // A database that fails (say, PostgreSQL restarted by other work on the machine) is reported
      // in the notes; the other figures stand.
      const dir = mkdtempSync(join(tmpdir(), 'asa-bench-svc-'));
      const port = await freePort();
      const env = { ...benchServiceEnv(dir), PORT: String(port), DATABASE_URL: db.url, LOG_LEVEL: 'warn' };
      const base = `http://127.0.0.1:${port}`;
      const boot = async (): Promise<ServiceProcess> => {
        const svc = startService({ cwd: dir, env, main });
        await waitForHttp(`${base}/health`, 120_000, svc);
        return svc;
      };
      try {
        // The first start runs the migrations; the data is then written with the service stopped.
        await (await boot()).stop();
        const loadStarted = Date.now();
        await fill(db, rows, tasks);
        loads.push({ database: type, rows, seconds: round((Date.now() - loadStarted) / 1000, 1) });
        console.error(`${type}: ${rows} rows generated in ${loads[loads.length - 1].seconds} s`);

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
              warmup: true,
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
              throw new Error(`${type} ${rows} ${name}: ${result.state}${'error' in result ? `: ${String(result.error)}` : ''}`);
            }
            queries.push({ database: type, rows, query: name, samples: result.latency.samplesCount, p50Ms: round(result.latency.p50, 1), p99Ms: round(result.latency.p99, 1), bytes });
            console.error(JSON.stringify(queries[queries.length - 1]));
          }
          const underQueriesMb = peak.stop();
          await sleep(2_000);
          rss.push({ database: type, rows, idleMb, underQueriesMb, afterQueriesMb: rssMb(pid) });
        } finally {
          await svc.stop();
        }
      } catch (err) {
        notes.push(`${type === 'sqlite' ? 'SQLite' : 'PostgreSQL'} at ${rows} rows stopped early: ${(err as Error).message.split('\n')[0]}`);
        console.error(err);
      } finally {
        await db.drop().catch((err: unknown) => notes.push(`could not drop the scratch database: ${(err as Error).message}`));
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  return { generator: 'bench/generate-usage.ts', data: { days: DAYS, models: MODELS, users: USERS, tasks }, sizes, queries: QUERIES, figures: queries, rss, loads, notes };
}

if (require.main === module) runSection(main);
