/**
 * Benchmark: stream GET /api/v1/usage/records.csv for 1,000,000 usage records and report the time,
 * the bytes and rows received, and the process's peak RSS (sampled every 20 ms while streaming),
 * to show memory stays flat however many records the range holds.
 *
 *   npx ts-node --transpile-only bench/billing-csv-stream.ts [records=1000000]
 *
 * Runs the real app (AppModule on Fastify, listening on 127.0.0.1) on a scratch SQLite file, or on
 * BENCH_DATABASE_URL (a PostgreSQL database it may fill; it is not emptied afterwards).
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const COUNT = Number(process.argv[2] ?? 1_000_000);
const CHUNK = 100_000;
const dir = mkdtempSync(join(tmpdir(), 'asa-bench-csv-'));
writeFileSync(join(dir, 'keys.json'), '{ "keys": [] }\n');
// Set before the app's config is loaded (config is read from the environment at boot).
Object.assign(process.env, {
  DATABASE_URL: process.env.BENCH_DATABASE_URL ?? `sqlite:${join(dir, 'bench.db')}`,
  API_KEYS_FILE: join(dir, 'keys.json'),
  USAGE_JOURNAL_DIR: join(dir, 'journal'),
  BILLING_EXPORT_DIR: join(dir, 'exports'),
  BILLING_DAILY_CRON: '',
  BILLING_MONTHLY_CRON: '',
  LOG_FORMAT: 'pretty',
});

/** Rows [from, to) in one INSERT ... SELECT: the database generates them (no million-row SQL text). */
function insertSql(type: string, from: number, to: number, startMs: number): string {
  const cols = 'id, created_at_ms, task_id, user_id, provider, operation, requested_model, input_tokens, output_tokens, total_tokens, cost_nanos, unpriced, latency_ms, status';
  const select = (id: string, text: (e: string) => string) =>
    `SELECT ${id}, ${startMs} + i * 3, 'task-' || ${text('i % 997')}, 'user-' || ${text('i % 13')}, 'openai', 'chat', ` +
    `'gpt-4o', 10, 5, 15, (i * 2654435761) % 90000000000, (1 = 0), 12.5, 'success'`;
  if (type === 'postgres') {
    return `INSERT INTO llm_usage (${cols}) ${select(`'00000000-0000-4000-8000-' || lpad(i::text, 12, '0')`, (e) => `(${e})::text`)} FROM generate_series(${from}::bigint, ${to - 1}::bigint) AS g(i)`;
  }
  return (
    `WITH RECURSIVE n(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM n WHERE i < ${to - 1}) ` +
    `INSERT INTO llm_usage (${cols}) ${select(`printf('00000000-0000-4000-8000-%012d', i)`, (e) => `(${e})`)} FROM n`
  );
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

async function main() {
  const { NestFactory } = await import('@nestjs/core');
  const { FastifyAdapter } = await import('@nestjs/platform-fastify');
  const { DataSource } = await import('typeorm');
  const { AppModule } = await import('../src/app.module');
  const { setupApp } = await import('../src/setup-app');

  const app = await NestFactory.create(AppModule, new FastifyAdapter(), { logger: ['error', 'warn'] });
  setupApp(app as never);
  await app.listen(0, '127.0.0.1');
  const base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  try {
    const ds = app.get(DataSource);
    const startMs = Date.now() - COUNT * 3 - 60_000;
    const loadStarted = Date.now();
    for (let from = 0; from < COUNT; from += CHUNK) await ds.query(insertSql(ds.options.type, from, Math.min(COUNT, from + CHUNK), startMs));
    console.log(`loaded ${COUNT.toLocaleString('en')} records in ${((Date.now() - loadStarted) / 1000).toFixed(1)} s (${ds.options.type})`);

    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    const started = process.hrtime.bigint();
    const res = await fetch(`${base}/api/v1/usage/records.csv`);
    if (res.status !== 200 || !res.body) throw new Error(`records.csv answered ${res.status}`);
    let bytes = 0;
    let lines = 0;
    const peaksAt: string[] = [];
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      bytes += chunk.byteLength;
      for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) lines++;
      // RSS at each tenth of the rows: flat memory means no growth with the rows streamed so far.
      if (peaksAt.length < Math.floor(((lines - 1) / COUNT) * 10)) {
        const m = process.memoryUsage();
        peaksAt.push(`${mb(m.rss)} (heap ${mb(m.heapUsed)})`);
      }
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    clearInterval(sampler);
    console.log(`streamed ${(lines - 1).toLocaleString('en')} rows, ${mb(bytes)} of CSV in ${seconds.toFixed(1)} s (${Math.round((lines - 1) / seconds).toLocaleString('en')} rows/s)`);
    console.log(`RSS before ${mb(rssBefore)}, peak while streaming ${mb(peak)} (+${mb(peak - rssBefore)})`);
    console.log(`RSS at each 10 % of the rows: ${peaksAt.join(', ')}`);
    if (lines - 1 !== COUNT) throw new Error(`expected ${COUNT} rows, got ${lines - 1}`);
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
