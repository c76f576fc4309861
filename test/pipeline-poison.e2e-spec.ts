import { DataSource } from 'typeorm';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import type { UsageRecord } from '../src/plugins/sdk';
import { createTestApp, TestApp } from './support/create-app';
import { waitFor } from './support/pipeline';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';
import { usageRecord } from './support/usage-records';

/**
 * The database sink retries failed batches forever (policy `retry`), so a record the database
 * refuses must not sit in a batch with good records: they would never be written.
 */
function poisonSuite(env: () => Record<string, string>) {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ env: { ...env(), USAGE_BATCH_SIZE: '50' } });
  });
  afterAll(() => t?.close());

  it('stores every good record of a batch that also holds a record the database refuses', async () => {
    const recorder = t.app.get(UsageRecorder);
    const good = Array.from({ length: 40 }, () => usageRecord());
    // NOT NULL violated: refused by both databases, whatever the retry.
    const refused = { ...usageRecord(), status: null } as unknown as UsageRecord;
    // Longer than the varchar(128) column: PostgreSQL refuses it; the sink cuts it instead.
    const longModel = usageRecord({ requestedModel: `m-${'x'.repeat(300)}`, costNanos: 4_242 });
    for (const r of [...good.slice(0, 20), refused, longModel, ...good.slice(20)]) await recorder.record(r);

    const ds = t.app.get(DataSource);
    const count = async () => Number((await ds.query('SELECT COUNT(*) AS n FROM llm_usage'))[0].n);
    await waitFor('the good records to be stored', async () => (await count()) === 41, 15_000);
    await recorder.flush();
    const ids = new Set((await ds.query('SELECT id FROM llm_usage')).map((r: { id: string }) => r.id));
    for (const r of [...good, longModel]) expect(ids.has(r.id)).toBe(true);
    expect(ids.has(refused.id)).toBe(false);
    const [stored] = await ds.query('SELECT requested_model, cost_nanos FROM llm_usage WHERE id = $1'.replace('$1', `'${longModel.id}'`));
    expect(String(stored.requested_model).startsWith('m-xxx')).toBe(true);
    expect(String(stored.requested_model).length).toBeLessThanOrEqual(longModel.requestedModel.length);
    expect(Number(stored.cost_nanos)).toBe(4_242);
    // The refused record is counted as dropped, not written, so /metrics agrees with the table.
    expect(recorder.stats().find((s) => s.sink === 'database')).toMatchObject({ queued: 0, written: 41, dropped: 1 });
    const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^usage_sink_written_records_total\{sink="database"\} 41$/m);
    expect(metrics).toMatch(/^usage_sink_dropped_records_total\{sink="database"\} 1$/m);
  }, 30_000);
}

describe('usage pipeline: a record the database refuses (SQLite)', () => {
  poisonSuite(() => ({}));
});

describePostgres('usage pipeline: a record the database refuses', () => {
  let db: ScratchDatabase;
  beforeAll(async () => {
    db = await createScratchPostgres();
  });
  afterAll(() => db?.drop());
  poisonSuite(() => ({ DATABASE_URL: db.url }));
});
