/**
 * Benchmark: usage ingestion through the database sink (DatabaseUsageSink.write, batches of 500 as
 * the recorder sends them: raw rows + the summaries of rollup-schema.ts in one transaction)
 * against the bare driver (sqlite3 / pg) on the same schema, in two ways:
 *
 * - `driver`, the reference: the same rows the sink writes. One transaction per batch, multi-row
 *   INSERT ... ON CONFLICT (id) DO NOTHING of 400 rows a statement, then each summary added by
 *   the database from the rows just inserted with one INSERT ... SELECT ... GROUP BY ... ON
 *   CONFLICT DO UPDATE (the summaries' SQL, `summariseSql`): on SQLite over the rowids past the
 *   table's largest before the batch, on PostgreSQL over the insert's RETURNING rows (a CTE).
 *   Plain SQL text each time, no prepared statements: the driver used directly.
 * - `raw_only`: the raw rows alone (the same inserts, no summaries), what the summaries cost.
 *
 * Reports records/s, the client's CPU per record and the ratios sink / driver and sink /
 * raw_only, per database and traffic shape, from one run.
 *
 *   npx ts-node --transpile-only bench/ingestion.ts [--quick]
 *
 * SQLite on scratch files; PostgreSQL on the server BENCH_POSTGRES_URL, TEST_DATABASE_URL or
 * BENCH_POSTGRES_ADMIN_URL names (the local one, as bench/usage-queries.ts uses, when none is set):
 * scratch databases are created on it and dropped. Records arrive in time order, as live
 * traffic does, in two shapes (see IngestionShape).
 */
import 'reflect-metadata';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { Database } from 'sqlite3';
import { DataSource } from 'typeorm';
import { buildTypeOrmOptions } from '../src/database/typeorm-options';
import { LlmUsage } from '../src/modules/usage/entities/llm-usage.entity';
import { summariseSql, SUMMARIES } from '../src/modules/usage/rollups/rollup-schema';
import { DatabaseUsageSink } from '../src/plugins/sinks/database-usage.sink';
import type { UsageRecord } from '../src/plugins/sdk';
import { runSection } from './support/common';

const BATCH = 500;
const ROWS_PER_STATEMENT = 400;

interface Rate {
  records_per_s: number;
  cpu_us_per_record: number;
}

export interface IngestionFigures {
  records: number;
  rounds: number;
  /** The bare driver writing the same rows as the sink (raw rows and summaries). */
  driver: Rate;
  /** The bare driver writing the raw rows alone. */
  raw_only: Rate;
  sink: Rate;
  /** sink records/s ÷ driver records/s (median of the rounds' ratios). */
  ratio: number;
  /** sink records/s ÷ raw_only records/s (median of the rounds' ratios). */
  ratio_raw_only: number;
}

export interface IngestionResult {
  sqlite: Record<IngestionShape, IngestionFigures>;
  postgres: Record<IngestionShape, IngestionFigures> | null;
}

/**
 * How calls spread over the rollup keys (hour, model, user, provider, status) and tasks:
 * - `tasks`: live traffic of the task runner: 50 tasks run at once, each one user's, 100 calls
 *   to its model (one in ten to a second model), interleaved in time order;
 * - `scattered`: every call a random one of 100,000 tasks, 1,000 users and 50 models: nearly
 *   every record is its own rollup and task-totals row (the worst case for the rollups).
 */
export type IngestionShape = 'tasks' | 'scattered';

/** Records 5 ms apart (ids random), 50 models, 1,000 users, 100,000 tasks. */
export function records(n: number, shape: IngestionShape): UsageRecord[] {
  const start = Date.now() - n * 5;
  const out: UsageRecord[] = [];
  for (let i = 0; i < n; i++) {
    // `tasks`: slot i % 50 runs task number slot + 50 * (its run), for 100 calls each.
    const task = shape === 'tasks' ? (i % 50) + 50 * Math.floor(i / 5_000) : (i * 2_654_435_761) % 100_000;
    const user = shape === 'tasks' ? (task * 40_503) % 1_000 : (i * 40_503) % 1_000;
    const model = shape === 'tasks' ? (task * 31 + (i % 10 === 9 ? 1 : 0)) % 50 : (i * 31) % 50;
    const input = 500 + ((i * 7919) % 20_000);
    const output = 20 + ((i * 104_729) % 2_000);
    out.push({
      id: randomUUID(),
      createdAtMs: start + i * 5,
      taskId: `task-${task}`,
      userId: `user-${user}`,
      traceId: randomBytes(16).toString('hex'),
      provider: 'openai',
      operation: 'chat',
      requestedModel: `model-${model}`,
      responseModel: `model-${model}-2025`,
      inputTokens: input,
      cachedInputTokens: i % 3 === 0 ? Math.floor(input / 2) : 0,
      cacheWriteTokens: 0,
      outputTokens: output,
      reasoningTokens: i % 5 === 0 ? Math.floor(output / 3) : 0,
      totalTokens: input + output,
      costNanos: i % 97 === 0 ? null : input * 2_500 + output * 10_000,
      unpriced: i % 97 === 0,
      priceSource: i % 97 === 0 ? null : 'genai-prices@0.1.8',
      latencyMs: 200 + ((i * 0.37) % 3_000),
      timeToFirstTokenMs: i % 2 === 0 ? 80 + (i % 300) : null,
      streamed: i % 2 === 0,
      status: i % 50 === 0 ? 'error' : 'success',
      errorType: i % 50 === 0 ? 'http_500' : null,
      estimated: i % 200 === 0,
    });
  }
  return out;
}

const COLUMNS: [prop: keyof UsageRecord, column: string][] = [
  ['id', 'id'], ['createdAtMs', 'created_at_ms'], ['taskId', 'task_id'], ['userId', 'user_id'], ['traceId', 'trace_id'],
  ['provider', 'provider'], ['operation', 'operation'], ['requestedModel', 'requested_model'], ['responseModel', 'response_model'],
  ['inputTokens', 'input_tokens'], ['cachedInputTokens', 'cached_input_tokens'], ['cacheWriteTokens', 'cache_write_tokens'],
  ['outputTokens', 'output_tokens'], ['reasoningTokens', 'reasoning_tokens'], ['totalTokens', 'total_tokens'],
  ['costNanos', 'cost_nanos'], ['unpriced', 'unpriced'], ['priceSource', 'price_source'], ['latencyMs', 'latency_ms'],
  ['timeToFirstTokenMs', 'ttft_ms'], ['streamed', 'streamed'], ['status', 'status'], ['errorType', 'error_type'], ['estimated', 'estimated'],
  ['tags', 'tags'],
];

function driverInsertSql(pg: boolean, rows: number): string {
  const tuples: string[] = [];
  for (let r = 0; r < rows; r++) tuples.push(`(${COLUMNS.map((_, c) => (pg ? `$${r * COLUMNS.length + c + 1}` : '?')).join(', ')})`);
  return `INSERT INTO llm_usage (${COLUMNS.map(([, c]) => c).join(', ')}) VALUES ${tuples.join(', ')} ON CONFLICT (id) DO NOTHING`;
}

function driverValues(rows: UsageRecord[], pg: boolean): unknown[] {
  const out: unknown[] = [];
  for (const r of rows) for (const [p] of COLUMNS) out.push(typeof r[p] === 'boolean' && !pg ? (r[p] ? 1 : 0) : (r[p] ?? null));
  return out;
}

interface Timed {
  seconds: number;
  cpuUs: number;
}

async function timed(work: () => Promise<void>): Promise<Timed> {
  const cpu = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await work();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const used = process.cpuUsage(cpu);
  return { seconds, cpuUs: used.user + used.system };
}

/** The bare sqlite3 driver: one transaction per batch, multi-row INSERTs, then (`summaries`) the summaries of the new rows. */
async function sqliteDriver(file: string, recs: UsageRecord[], summaries: boolean): Promise<Timed> {
  const db = new Database(file);
  const exec = (sql: string) => new Promise<void>((res, rej) => db.exec(sql, (e) => (e ? rej(e) : res())));
  const run = (sql: string, values: unknown[]) => new Promise<void>((res, rej) => db.run(sql, values, (e) => (e ? rej(e) : res())));
  const maxRowid = () => new Promise<number>((res, rej) => db.get<{ m: number }>('SELECT COALESCE(MAX(rowid), 0) AS m FROM llm_usage', (e, row) => (e ? rej(e) : res(row.m))));
  await exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;');
  try {
    return await timed(async () => {
      for (let b = 0; b < recs.length; b += BATCH) {
        // IMMEDIATE: the write lock before reading the largest rowid, so no other writer comes between.
        await exec('BEGIN IMMEDIATE');
        const before = summaries ? await maxRowid() : 0;
        const batch = recs.slice(b, b + BATCH);
        for (let i = 0; i < batch.length; i += ROWS_PER_STATEMENT) {
          const rows = batch.slice(i, i + ROWS_PER_STATEMENT);
          await run(driverInsertSql(false, rows.length), driverValues(rows, false));
        }
        if (summaries) for (const s of SUMMARIES) await run(summariseSql('sqlite', s, `u.rowid > ${before}`), []);
        await exec('COMMIT');
      }
    });
  } finally {
    await new Promise<void>((r) => db.close(() => r()));
  }
}

/** The bare pg driver: one transaction per batch, multi-row INSERTs, each (`summaries`) with the summaries of the rows it wrote in the same statement. */
async function postgresDriver(url: string, recs: UsageRecord[], summaries: boolean): Promise<Timed> {
  const c = new Client({ connectionString: url });
  await c.connect();
  const sql = (rows: number) => {
    const insert = driverInsertSql(true, rows);
    if (!summaries) return insert;
    return `WITH written AS (${insert} RETURNING *)${SUMMARIES.map((s, i) => `, s${i} AS (${summariseSql('postgres', s, 'TRUE', 'written')})`).join('')} SELECT 1`;
  };
  try {
    return await timed(async () => {
      for (let b = 0; b < recs.length; b += BATCH) {
        await c.query('BEGIN');
        const batch = recs.slice(b, b + BATCH);
        for (let i = 0; i < batch.length; i += ROWS_PER_STATEMENT) {
          const rows = batch.slice(i, i + ROWS_PER_STATEMENT);
          await c.query(sql(rows.length), driverValues(rows, true));
        }
        await c.query('COMMIT');
      }
    });
  } finally {
    await c.end();
  }
}

async function migrated(databaseUrl: { type: 'sqlite'; path: string } | { type: 'postgres'; url: string }): Promise<DataSource> {
  const ds = await new DataSource({ ...buildTypeOrmOptions(databaseUrl), entities: [LlmUsage], logging: false }).initialize();
  await ds.runMigrations({ transaction: 'each' });
  return ds;
}

async function sinkRun(ds: DataSource, recs: UsageRecord[]): Promise<Timed> {
  const sink = new DatabaseUsageSink(ds);
  return timed(async () => {
    for (let b = 0; b < recs.length; b += BATCH) await sink.write(recs.slice(b, b + BATCH));
  });
}

async function scratchPostgres(serverUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `asa_bench_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`).finally(() => admin.end());
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new Client({ connectionString: serverUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).finally(() => c.end());
    },
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function figures(n: number, t: Record<Writer, Timed[]>): IngestionFigures {
  const rate = (x: Timed) => n / x.seconds;
  const of = (xs: Timed[]): Rate => ({
    records_per_s: Math.round(median(xs.map(rate))),
    cpu_us_per_record: Math.round(median(xs.map((x) => x.cpuUs / n)) * 10) / 10,
  });
  const ratio = (ref: Timed[]) => Math.round(median(ref.map((d, i) => rate(t.sink[i]) / rate(d))) * 1000) / 1000;
  return { records: n, rounds: t.sink.length, driver: of(t.driver), raw_only: of(t.raw_only), sink: of(t.sink), ratio: ratio(t.driver), ratio_raw_only: ratio(t.raw_only) };
}

type Writer = 'driver' | 'raw_only' | 'sink';
const WRITERS: Writer[] = ['driver', 'raw_only', 'sink'];

/**
 * Runs the benchmark; `quick` uses 20,000 records and one round (CI), else 200,000 records and
 * three rounds (the median is reported). The three writers take turns within a round (the first
 * one rotating from round to round), each on a freshly migrated database, so all see the same
 * machine load.
 */
export async function run(opts: { quick: boolean; postgresUrl?: string }): Promise<IngestionResult> {
  const n = opts.quick ? 20_000 : 200_000;
  const rounds = opts.quick ? 1 : 3;
  const shapes: IngestionShape[] = ['tasks', 'scattered'];
  const dir = mkdtempSync(join(tmpdir(), 'asa-bench-ingest-'));
  const server =
    opts.postgresUrl ?? process.env.BENCH_POSTGRES_URL ?? process.env.TEST_DATABASE_URL ?? process.env.BENCH_POSTGRES_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const result: IngestionResult = { sqlite: {} as IngestionResult['sqlite'], postgres: server ? ({} as IngestionResult['sqlite']) : null };
  const order = (r: number) => WRITERS.map((_, i) => WRITERS[(i + r) % WRITERS.length]);
  try {
    for (const shape of shapes) {
      const recs = records(n, shape);
      const sq: Record<Writer, Timed[]> = { driver: [], raw_only: [], sink: [] };
      for (let r = 0; r < rounds; r++) {
        for (const w of order(r)) {
          const file = join(dir, `${w}-${shape}-${r}.db`);
          const ds = await migrated({ type: 'sqlite', path: file });
          if (w === 'sink') sq.sink.push(await sinkRun(ds, recs));
          await ds.destroy();
          if (w !== 'sink') sq[w].push(await sqliteDriver(file, recs, w === 'driver'));
          rmSync(file, { force: true });
        }
      }
      result.sqlite[shape] = figures(n, sq);
      if (!server || !result.postgres) continue;
      const pg: Record<Writer, Timed[]> = { driver: [], raw_only: [], sink: [] };
      for (let r = 0; r < rounds; r++) {
        for (const w of order(r)) {
          const scratch = await scratchPostgres(server);
          try {
            const ds = await migrated({ type: 'postgres', url: scratch.url });
            if (w === 'sink') pg.sink.push(await sinkRun(ds, recs));
            await ds.destroy();
            if (w !== 'sink') pg[w].push(await postgresDriver(scratch.url, recs, w === 'driver'));
          } finally {
            await scratch.drop();
          }
        }
      }
      result.postgres[shape] = figures(n, pg);
    }
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The figures `npm run bench` reads (bench/support/report.ts), one per database and traffic shape, beside the full result. */
function forHarness(r: IngestionResult) {
  const figures = (['sqlite', 'postgres'] as const).flatMap((database) => {
    const byShape = r[database];
    if (!byShape) return [];
    return (Object.entries(byShape) as [IngestionShape, IngestionFigures][]).map(([shape, f]) => ({
      database,
      shape,
      recorderPerSecond: f.sink.records_per_s,
      rawPerSecond: f.driver.records_per_s,
      rawRowsOnlyPerSecond: f.raw_only.records_per_s,
    }));
  });
  return { figures, ...r };
}

if (require.main === module) runSection(async (quick) => forHarness(await run({ quick })));
