/**
 * Deterministic usage data for benchmarks: `rows` LLM calls over the last `days` days (default 90),
 * made by `tasks` tasks (100,000) of `users` users (1,000) on `models` models (50), plus the tasks
 * themselves and the rollups the usage sink would have kept (hourly, daily, weekly, per task). The database
 * computes every row from its index and the seed (integer hashes), so the same options give the
 * same rows (ids included) on SQLite and PostgreSQL, and no row is shipped as SQL text:
 * `generate_series` on PostgreSQL, a recursive CTE on SQLite, in chunks of one transaction each.
 *
 * A task's calls are consecutive (as the task runner makes them): one user, one model (every
 * tenth call to the next model), spread evenly in time. Every 50th call fails; the last model has
 * no price (unpriced calls); every 200th call is estimated.
 *
 *   npx ts-node --transpile-only bench/generate-usage.ts --rows 1000000 [--seed 1] [--database-url sqlite:data/bench.db]
 *
 * The database must have no usage yet (ids would collide and rollups double); migrations are run.
 */
import 'reflect-metadata';
import { parseArgs } from 'node:util';
import { DataSource } from 'typeorm';
import { parseDatabaseUrl } from '../src/config/database.config';
import { buildTypeOrmOptions } from '../src/database/typeorm-options';
import { DAILY_MODEL, DAILY_USER, DAY_MS, DbType, HOURLY, summariseFromFinerSql, summariseFromHourlySql, summariseSql, TASK_SUMMARY, TASK_TOTALS, WEEKLY_USER, WEEK_MS } from '../src/modules/usage/rollups/rollup-schema';

export interface GenerateUsageOptions {
  rows: number;
  seed?: number;
  days?: number;
  models?: number;
  users?: number;
  tasks?: number;
  /** End of the generated span (default: now); the last call is a minute before it. */
  nowMs?: number;
  /** Rows per INSERT statement / transaction. */
  chunk?: number;
}

export interface GenerateUsageResult {
  rows: number;
  tasks: number;
  fromMs: number;
  toMs: number;
  /** Wall time of each step, seconds. */
  seconds: { usage: number; tasks: number; rollups: number; analyze: number; total: number };
}


/** Generates into `ds` (migrated, without usage); see the file comment. */
export async function generateUsage(ds: DataSource, opts: GenerateUsageOptions): Promise<GenerateUsageResult> {
  const db: DbType = ds.options.type === 'postgres' ? 'postgres' : 'sqlite';
  const o = { seed: 1, days: 90, models: 50, users: 1_000, tasks: 100_000, nowMs: Date.now(), chunk: 200_000, ...opts };
  for (const [k, v] of Object.entries(o)) {
    if (!Number.isSafeInteger(v) || v < (k === 'seed' ? 0 : 1)) throw new Error(`generateUsage: ${k} must be a positive whole number, got ${v}`);
  }
  // Fewer rows than tasks: a task per row.
  o.tasks = Math.min(o.tasks, o.rows);
  const [existing] = await ds.query('SELECT COUNT(*) AS n FROM llm_usage');
  if (Number(existing.n) > 0) throw new Error('generateUsage: llm_usage already has rows; generate into an empty database');
  const span = o.days * DAY_MS;
  const toMs = o.nowMs - 60_000;
  const fromMs = toMs - span;
  const started = Date.now();

  for (let from = 0; from < o.rows; from += o.chunk) {
    await ds.query(usageSql(db, o, from, Math.min(o.rows, from + o.chunk), fromMs, span));
  }
  const usageDone = Date.now();
  const taskCount = o.tasks;
  for (let from = 0; from < taskCount; from += o.chunk) {
    await ds.query(tasksSql(db, o, from, Math.min(taskCount, from + o.chunk), fromMs, span));
  }
  const tasksDone = Date.now();
  await ds.transaction(async (m) => {
    const where = `u.created_at_ms >= ${fromMs}`;
    await m.query(summariseSql(db, HOURLY, where));
    for (const s of [DAILY_MODEL, DAILY_USER]) await m.query(summariseFromHourlySql(db, s, Math.floor(fromMs / DAY_MS) * DAY_MS));
    await m.query(summariseFromFinerSql(db, WEEKLY_USER, DAILY_USER, `f.day_ms >= ${Math.floor(fromMs / WEEK_MS) * WEEK_MS}`));
    await m.query(summariseSql(db, TASK_TOTALS, `${where} AND u.task_id IS NOT NULL`));
    await m.query(summariseFromFinerSql(db, TASK_SUMMARY, TASK_TOTALS, '1 = 1'));
  });
  const rollupsDone = Date.now();
  // Fresh statistics, as a database that grew over months would have (PostgreSQL's autovacuum has not run yet).
  await ds.query('ANALYZE');
  const done = Date.now();
  const s = (ms: number) => Math.round(ms / 10) / 100;
  return {
    rows: o.rows,
    tasks: taskCount,
    fromMs,
    toMs,
    seconds: {
      usage: s(usageDone - started),
      tasks: s(tasksDone - usageDone),
      rollups: s(rollupsDone - tasksDone),
      analyze: s(done - rollupsDone),
      total: s(done - started),
    },
  };
}

type Resolved = Required<Omit<GenerateUsageOptions, 'nowMs' | 'chunk'>>;

/** An integer hash of (row or task index, salt, seed) in [0, 1000003): small enough that products stay exact in BIGINT. */
const h = (o: Resolved, idx: string, salt: number) => `((${idx} * 2654435761 + ${salt * 40_503 + o.seed * 97}) % 1000003)`;

/** Rows [from, to) of the usage: row i belongs to task i * tasks / rows (a task's calls are consecutive). */
function usageSql(db: DbType, o: Resolved, from: number, to: number, fromMs: number, span: number): string {
  const task = `(i * ${o.tasks} / ${o.rows})`;
  const model = `((${task} * 31 + ${o.seed} + (CASE WHEN i % 10 = 9 THEN 1 ELSE 0 END)) % ${o.models})`;
  const input = `(200 + ${h(o, 'i', 1)} % 20000)`;
  const output = `(10 + ${h(o, 'i', 2)} % 2000)`;
  const unpriced = `(${model} = ${o.models - 1})`;
  const text = (e: string) => (db === 'postgres' ? `(${e})::text` : `(${e})`);
  const id =
    db === 'postgres'
      ? `lpad(to_hex(${o.seed}), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(i), 12, '0')`
      : `printf('%08x-0000-4000-8000-%012x', ${o.seed}, i)`;
  const cols =
    'id, created_at_ms, task_id, user_id, provider, operation, requested_model, response_model, input_tokens, cached_input_tokens, ' +
    'cache_write_tokens, output_tokens, reasoning_tokens, total_tokens, cost_nanos, unpriced, price_source, latency_ms, streamed, status, error_type, estimated';
  const select =
    `SELECT ${id}, ${fromMs} + i * ${span} / ${o.rows}, 'gen-${o.seed}-' || ${text(task)}, ` +
    `'user-' || ${text(`(${task} * 40503 + ${o.seed}) % ${o.users}`)}, ` +
    `CASE WHEN ${model} % 5 = 4 THEN 'anthropic' ELSE 'openai' END, 'chat', 'model-' || ${text(model)}, 'model-' || ${text(model)}, ` +
    `${input}, CASE WHEN i % 3 = 0 THEN ${input} / 2 ELSE 0 END, 0, ${output}, CASE WHEN i % 5 = 0 THEN ${output} / 3 ELSE 0 END, ` +
    `${input} + ${output}, CASE WHEN ${unpriced} THEN NULL ELSE ${input} * 2500 + ${output} * 10000 + ${h(o, 'i', 3)} % 1000 END, ` +
    `${unpriced}, CASE WHEN ${unpriced} THEN NULL ELSE 'bench' END, 200 + ${h(o, 'i', 4)} % 3000000 / 1000.0, (i % 2 = 0), ` +
    `CASE WHEN ${h(o, 'i', 5)} % 50 = 0 THEN 'error' ELSE 'success' END, CASE WHEN ${h(o, 'i', 5)} % 50 = 0 THEN 'http_500' ELSE NULL END, (i % 200 = 0)`;
  if (db === 'postgres') {
    return `INSERT INTO llm_usage (${cols}) ${select} FROM generate_series(${from}::bigint, ${to - 1}::bigint) AS g(i)`;
  }
  return `WITH RECURSIVE n(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM n WHERE i < ${to - 1}) INSERT INTO llm_usage (${cols}) ${select} FROM n`;
}

/** Tasks [from, to): created when their first call is made, finished after their last; 70 % succeeded, 25 % failed, 5 % cancelled. */
function tasksSql(db: DbType, o: Resolved, from: number, to: number, fromMs: number, span: number): string {
  const created = `(${fromMs} + t * ${span} / ${o.tasks})`;
  const outcome = `(${h(o, 't', 7)} % 100)`;
  const status = `CASE WHEN ${outcome} < 70 THEN 'succeeded' WHEN ${outcome} < 95 THEN 'failed' ELSE 'cancelled' END`;
  const text = (e: string) => (db === 'postgres' ? `(${e})::text` : `(${e})`);
  const cols =
    'id, status, user_id, repo_url, bug_description, test_command, model, max_cost_nanos, max_attempts, agent, attempts, failure_reason, ' +
    'created_at_ms, started_at_ms, finished_at_ms';
  const select =
    `SELECT 'gen-${o.seed}-' || ${text('t')}, ${status}, 'user-' || ${text(`(t * 40503 + ${o.seed}) % ${o.users}`)}, ` +
    `'https://example.invalid/repo.git', 'generated', 'true', 'model-' || ${text(`(t * 31 + ${o.seed}) % ${o.models}`)}, 5000000000, 3, 'bug-fix', 1, ` +
    `CASE WHEN ${outcome} >= 70 AND ${outcome} < 95 THEN 'tests_failed' ELSE NULL END, ${created}, ${created} + 1000, ` +
    `${created} + 1000 + ${h(o, 't', 8)} % 600000`;
  if (db === 'postgres') return `INSERT INTO tasks (${cols}) ${select} FROM generate_series(${from}::bigint, ${to - 1}::bigint) AS g(t)`;
  return `WITH RECURSIVE n(t) AS (SELECT ${from} UNION ALL SELECT t + 1 FROM n WHERE t < ${to - 1}) INSERT INTO tasks (${cols}) ${select} FROM n`;
}

if (require.main === module) {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '1000000' },
      seed: { type: 'string', default: '1' },
      'database-url': { type: 'string' },
    },
  });
  const url = values['database-url'] ?? process.env.DATABASE_URL;
  (async () => {
    const ds = await new DataSource({ ...buildTypeOrmOptions(parseDatabaseUrl(url)), logging: false }).initialize();
    try {
      await ds.runMigrations({ transaction: 'each' });
      const r = await generateUsage(ds, { rows: Number(values.rows), seed: Number(values.seed) });
      process.stdout.write(`${JSON.stringify({ database: ds.options.type, ...r })}\n`);
    } finally {
      await ds.destroy();
    }
  })().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
