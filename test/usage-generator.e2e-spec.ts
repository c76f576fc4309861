import { DataSource } from 'typeorm';
import { generateUsage } from '../bench/generate-usage';
import { rebuildRollups } from '../src/modules/usage/rollups/rollup-rebuild';
import { SUMMARIES } from '../src/modules/usage/rollups/rollup-schema';
import { createTestApp, TestApp } from './support/create-app';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';

/**
 * The benchmark data generator writes raw rows, tasks and rollups by bulk SQL. Its rollups must be
 * exactly what the usage sink (and a rebuild) would have kept, or the query benchmarks would
 * measure answers that differ from the raw rows.
 */
function generatorSuite(env: () => Record<string, string>) {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ env: env() });
  });
  afterAll(() => t?.close());

  it('writes the requested rows and tasks, deterministically, with rollups equal to a rebuild from the raw rows', async () => {
    const ds = t.app.get(DataSource);
    const nowMs = Date.UTC(2026, 0, 1);
    const r = await generateUsage(ds, { rows: 20_000, tasks: 2_000, users: 50, models: 10, nowMs, chunk: 7_000 });
    expect(r).toMatchObject({ rows: 20_000, tasks: 2_000, toMs: nowMs - 60_000, fromMs: nowMs - 60_000 - 90 * 86_400_000 });
    const one = async (sql: string) => (await ds.query(sql))[0];
    const shape = await one('SELECT COUNT(*) AS n, COUNT(DISTINCT task_id) AS tasks, COUNT(DISTINCT user_id) AS users, COUNT(DISTINCT requested_model) AS models, MIN(created_at_ms) AS lo, MAX(created_at_ms) AS hi FROM llm_usage');
    expect([shape.n, shape.tasks, shape.users, shape.models].map(Number)).toEqual([20_000, 2_000, 50, 10]);
    expect(Number(shape.lo)).toBeGreaterThanOrEqual(r.fromMs);
    expect(Number(shape.hi)).toBeLessThan(r.toMs);
    expect(Number((await one('SELECT COUNT(*) AS n FROM tasks')).n)).toBe(2_000);
    // Same seed, same rows: row 7 (task 0, model-1) has the id and cost its formula gives, on either database.
    const hash = (i: number, salt: number) => Number((BigInt(i) * 2654435761n + BigInt(salt * 40_503 + 97)) % 1000003n);
    const input = 200 + (hash(7, 1) % 20_000);
    const output = 10 + (hash(7, 2) % 2_000);
    const row = await one("SELECT id, task_id, requested_model, cost_nanos FROM llm_usage WHERE id = '00000001-0000-4000-8000-000000000007'");
    expect({ ...row, cost_nanos: Number(row.cost_nanos) }).toEqual({
      id: '00000001-0000-4000-8000-000000000007',
      task_id: 'gen-1-0',
      requested_model: 'model-1',
      cost_nanos: input * 2_500 + output * 10_000 + (hash(7, 3) % 1_000),
    });

    const dump = async () => {
      const out: Record<string, unknown[]> = {};
      for (const s of SUMMARIES) out[s.table] = await ds.query(`SELECT * FROM ${s.table} ORDER BY ${s.keys.join(', ')}`);
      return out;
    };
    const generated = await dump();
    for (const s of SUMMARIES) {
      expect(generated[s.table].length).toBeGreaterThan(0);
      await ds.query(`DELETE FROM ${s.table}`);
    }
    await rebuildRollups(ds, null);
    expect(await dump()).toEqual(generated);

    // The API reads them: the 90-day total equals the raw rows' exact sum.
    const raw = await one('SELECT CAST(SUM(cost_nanos) AS TEXT) AS nanos, COUNT(*) AS n FROM llm_usage');
    const body = (await t.app.inject({ method: 'GET', url: '/api/v1/usage/overall?days=3650' })).json();
    expect(body.total_requests).toBe(20_000);
    expect(body.total_cost_usd_exact.replace('.', '').replace(/^0+/, '')).toBe(String(raw.nanos));

    // Task metrics over every generated task: counts, mean and p95 duration (nearest rank) and the
    // exact cost, as computed here from the rows themselves.
    const tasks: { d: unknown; status: string }[] = await ds.query('SELECT finished_at_ms - started_at_ms AS d, status FROM tasks');
    const durations = tasks.map((x) => Number(x.d)).sort((a, b) => a - b);
    const metrics = (await t.app.inject({ method: 'GET', url: '/api/v1/usage/metrics/tasks?days=3650' })).json();
    expect(metrics).toMatchObject({
      total_tasks: 2_000,
      by_status: { succeeded: tasks.filter((x) => x.status === 'succeeded').length, failed: tasks.filter((x) => x.status === 'failed').length },
      avg_duration_seconds: Math.round(durations.reduce((a, b) => a + b, 0) / durations.length) / 1000,
      p95_duration_seconds: durations[Math.ceil(0.95 * durations.length) - 1] / 1000,
    });
    expect(metrics.total_cost_usd_exact.replace('.', '').replace(/^0+/, '')).toBe(String(raw.nanos));
  });
}

describe('benchmark data generator (SQLite)', () => generatorSuite(() => ({})));

describePostgres('benchmark data generator', () => {
  let db: ScratchDatabase;
  beforeAll(async () => {
    db = await createScratchPostgres();
  });
  afterAll(() => db?.drop());
  generatorSuite(() => ({ DATABASE_URL: db.url }));
});
