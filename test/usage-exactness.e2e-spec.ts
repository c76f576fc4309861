import { DataSource } from 'typeorm';
import { rebuildRollups } from '../src/modules/usage/rollups/rollup-rebuild';
import { createTestApp, TestApp } from './support/create-app';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';
import { usdExact } from './support/usage-records';

const CHUNK = 100_000;
const MODELS = ['gpt-4o', 'gpt-4o-mini', 'o3', 'claude-sonnet'];
const SPACING_MS = 3;

/**
 * Record i of the fixture. The database generates the same rows with the same integer formulas
 * (below), so a million rows are inserted without shipping a million rows of SQL text.
 * Costs use every nano-dollar digit, up to ~90 USD; every 97th call is unpriced.
 */
export function fixtureCost(i: number): bigint | null {
  return i % 97 === 0 ? null : (BigInt(i) * 2654435761n) % 90_000_000_000n + BigInt(i % 7);
}

const COST_SQL = '(CASE WHEN i % 97 = 0 THEN NULL ELSE (i * 2654435761) % 90000000000 + i % 7 END)';
const MODEL_SQL = `(CASE i % 4 ${MODELS.map((m, k) => `WHEN ${k} THEN '${m}'`).join(' ')} END)`;

/** Inserts rows [from, to) of the fixture in one multi-row INSERT ... SELECT (one transaction). */
function insertSql(type: string, from: number, to: number, startMs: number): string {
  const cols =
    'id, created_at_ms, task_id, user_id, provider, operation, requested_model, input_tokens, output_tokens, ' +
    'total_tokens, cost_nanos, unpriced, latency_ms, status';
  const select = (id: string, text: (e: string) => string) =>
    `SELECT ${id}, ${startMs} + i * ${SPACING_MS}, 'task-' || ${text('i % 997')}, 'user-' || ${text('i % 13')}, ` +
    `'openai', 'chat', ${MODEL_SQL}, 10, 5, 15, ${COST_SQL}, (i % 97 = 0), 12.5, 'success'`;
  if (type === 'postgres') {
    return (
      `INSERT INTO llm_usage (${cols}) ` +
      select(`'00000000-0000-4000-8000-' || lpad(i::text, 12, '0')`, (e) => `(${e})::text`) +
      ` FROM generate_series(${from}::bigint, ${to - 1}::bigint) AS g(i)`
    );
  }
  return (
    `WITH RECURSIVE n(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM n WHERE i < ${to - 1}) ` +
    `INSERT INTO llm_usage (${cols}) ` +
    select(`printf('00000000-0000-4000-8000-%012d', i)`, (e) => `(${e})`) +
    ' FROM n'
  );
}

/** Loads `count` fixture rows and returns the exact BigInt sums the API must report. */
async function bulkInsert(ds: DataSource, count: number, nowMs: number) {
  const startMs = nowMs - count * SPACING_MS - 60_000;
  for (let from = 0; from < count; from += CHUNK) {
    await ds.query(insertSql(ds.options.type, from, Math.min(count, from + CHUNK), startMs));
  }
  const byModel = new Map<string, bigint>(MODELS.map((m) => [m, 0n]));
  let total = 0n;
  let unpriced = 0;
  let floatSum = 0;
  for (let i = 0; i < count; i++) {
    const cost = fixtureCost(i);
    if (cost === null) {
      unpriced++;
      continue;
    }
    total += cost;
    byModel.set(MODELS[i % 4], byModel.get(MODELS[i % 4])! + cost);
    floatSum += Number(cost) / 1e9;
  }
  return { total, byModel, unpriced, floatSum };
}

function exactnessSuite(count: number, env: () => Record<string, string>) {
  let t: TestApp;
  let expected: Awaited<ReturnType<typeof bulkInsert>>;

  beforeAll(async () => {
    t = await createTestApp({ env: env() });
    const started = Date.now();
    expected = await bulkInsert(t.app.get(DataSource), count, Date.now());
    console.log(`inserted ${count} rows in ${Date.now() - started} ms`);
    // The rows went in by SQL, not through the usage sink: build their rollups as `npm run rollups:rebuild` does.
    const rebuildStarted = Date.now();
    await rebuildRollups(t.app.get(DataSource), null);
    console.log(`rebuilt the rollups of ${count} rows in ${Date.now() - rebuildStarted} ms`);
  }, 300_000);
  afterAll(() => t?.close());

  it(`the API total of ${count.toLocaleString('en')} calls equals the BigInt sum of their costs to the nano-dollar`, async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/usage/overall?days=1' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.total_requests).toBe(count);
    expect(body.unpriced_requests).toBe(expected.unpriced);
    expect(body.total_cost_usd_exact).toBe(usdExact(expected.total));
    expect(body.total_cost_usd).toBe(Number(usdExact(expected.total)));
    for (const model of MODELS) expect(body.by_model[model].cost_usd_exact).toBe(usdExact(expected.byModel.get(model)!));
    // What summing floats would have produced instead (reported, not asserted: drift depends on the data).
    const drift = Math.abs(expected.floatSum - Number(usdExact(expected.total)));
    console.log(`float sum drifts by ${drift.toExponential(2)} USD from the exact total ${body.total_cost_usd_exact}`);

    const series = (await t.app.inject({ method: 'GET', url: '/api/v1/usage/timeseries?days=1&interval=hour' })).json();
    expect(series.total_cost_usd_exact).toBe(usdExact(expected.total));
    const bucketSum = series.buckets.reduce((s: bigint, b: { cost_usd_exact: string }) => s + BigInt(b.cost_usd_exact.replace('.', '')), 0n);
    expect(bucketSum).toBe(expected.total);
  });
}

describe('usage totals are exact (SQLite)', () => {
  exactnessSuite(1_000_000, () => ({}));
});

describePostgres('usage totals are exact', () => {
  let db: ScratchDatabase;
  beforeAll(async () => {
    db = await createScratchPostgres();
  });
  afterAll(() => db?.drop());
  exactnessSuite(1_000_000, () => ({ DATABASE_URL: db.url }));
});
