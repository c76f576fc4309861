import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { USAGE_SINKS, UsageRecord, UsageSink } from '../src/plugins/sdk';
import { DatabaseUsageSink } from '../src/plugins/sinks/database-usage.sink';
import { createTestApp, TestApp } from './support/create-app';
import { GatedSink, HangingSink, sqlite, ThrowingSink, waitFor } from './support/pipeline';
import { usageRecord } from './support/usage-records';

/** The real AppModule with the real database sink, plus the given extra sinks. */
function appWithSinks(extra: UsageSink[], env: Record<string, string> = {}) {
  return createTestApp({
    env,
    override: (b) =>
      b.overrideProvider(USAGE_SINKS).useFactory({ factory: (db: DatabaseUsageSink) => [db, ...extra], inject: [DatabaseUsageSink] }),
  });
}

async function storedIds(t: TestApp): Promise<string[]> {
  const rows: { id: string }[] = await t.app.get(DataSource).query('SELECT id FROM llm_usage');
  return rows.map((r) => r.id);
}

const stat = (t: TestApp, sink: string) => t.app.get(UsageRecorder).stats().find((s) => s.sink === sink)!;

describe('usage pipeline: failing sinks are isolated', () => {
  let t: TestApp;
  const throwing = new ThrowingSink();
  // Long timeout: the database sink must finish while this one is still stuck.
  const hanging = new HangingSink({ writeTimeoutMs: 3_000 });

  beforeAll(async () => {
    t = await appWithSinks([throwing, hanging], { USAGE_BATCH_SIZE: '200' });
  });
  afterAll(() => t?.close());

  it('a throwing and a hanging sink neither stop nor lose records of the database sink, and are counted', async () => {
    const recorder = t.app.get(UsageRecorder);
    const records = Array.from({ length: 400 }, () => usageRecord());
    await Promise.all(records.map((r) => recorder.record(r)));

    // The database has everything while the hanging sink's first write is still pending.
    await waitFor('all records in the database', async () => (await storedIds(t)).length === records.length);
    expect(stat(t, 'hanging')).toMatchObject({ failedWrites: 0, written: 0 });
    expect(hanging.calls).toBe(1);
    expect(new Set(await storedIds(t))).toEqual(new Set(records.map((r) => r.id)));

    await recorder.flush();
    expect(stat(t, 'database')).toMatchObject({ written: 400, dropped: 0, failedWrites: 0, queued: 0 });
    // `drop` policy (the default): each failed or timed-out batch is counted and dropped for that sink only.
    expect(stat(t, 'throwing')).toMatchObject({ written: 0, dropped: 400, queued: 0 });
    expect(stat(t, 'throwing').failedWrites).toBe(throwing.calls);
    expect(stat(t, 'hanging')).toMatchObject({ written: 0, dropped: 400, queued: 0 });
    expect(stat(t, 'hanging').failedWrites).toBe(hanging.calls);
  }, 60_000);
});

describe('usage pipeline: backpressure', () => {
  let t: TestApp;
  const gated = new GatedSink();

  beforeAll(async () => {
    t = await appWithSinks([gated], { USAGE_QUEUE_CAPACITY: '20', USAGE_BATCH_SIZE: '5' });
  });
  afterAll(() => t?.close());

  it('a full queue makes record() wait instead of dropping; everything arrives once the sink catches up', async () => {
    const recorder = t.app.get(UsageRecorder);
    gated.hold();
    const records = Array.from({ length: 100 }, () => usageRecord());
    let accepted = 0;
    const calls = records.map((r) => recorder.record(r).then(() => accepted++));

    await waitFor('the gated queue to fill', () => stat(t, 'gated').queued === 20);
    await new Promise((r) => setTimeout(r, 200));
    // Exactly the queue's capacity was accepted; the other 80 callers are waiting, none was dropped.
    expect(accepted).toBe(20);
    expect(stat(t, 'gated')).toMatchObject({ queued: 20, dropped: 0 });

    gated.resume();
    await Promise.all(calls);
    await recorder.flush();
    expect(accepted).toBe(100);
    expect(gated.received.map((r) => r.id).sort()).toEqual(records.map((r) => r.id).sort());
    expect((await storedIds(t)).sort()).toEqual(records.map((r) => r.id).sort());
    expect(t.app.get(UsageRecorder).stats().every((s) => s.dropped === 0)).toBe(true);
  });
});

describe('usage pipeline: shutdown drains every queue', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'asa-drain-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('app.close() (what SIGTERM runs) writes every queued record to every sink before the database closes', async () => {
    const file = join(dir, 'asa.db');
    const other = new GatedSink('other');
    // Nothing would be written for a minute: records only leave the queues through the drain.
    const t = await appWithSinks([other], {
      DATABASE_URL: `sqlite:${file}`,
      USAGE_FLUSH_INTERVAL_MS: '60000',
      USAGE_BATCH_SIZE: '100000',
    });
    const records: UsageRecord[] = Array.from({ length: 1_000 }, () => usageRecord());
    const recorder = t.app.get(UsageRecorder);
    for (const r of records) await recorder.record(r);
    expect(stat(t, 'database')).toMatchObject({ queued: 1_000, written: 0 });
    expect(other.received).toHaveLength(0);

    await t.close();

    expect(other.received).toHaveLength(1_000);
    const db = sqlite(file);
    try {
      const rows = await db.all<{ n: number; d: number }>('SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS d FROM llm_usage');
      expect(rows[0]).toEqual({ n: 1_000, d: 1_000 });
    } finally {
      await db.close();
    }
  });
});
