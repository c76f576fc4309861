import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { buildTypeOrmOptions } from '../src/database/typeorm-options';
import { LlmUsage } from '../src/modules/usage/entities/llm-usage.entity';
import { rebuildRollups } from '../src/modules/usage/rollups/rollup-rebuild';
import { SUMMARIES } from '../src/modules/usage/rollups/rollup-schema';
import { DatabaseUsageSink } from '../src/plugins/sinks/database-usage.sink';
import type { UsageRecord } from '../src/plugins/sdk';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';
import { seededRandom, usageRecord } from './support/usage-records';

/**
 * The database sink on its own, against a real migrated database: every field comes back as it
 * was recorded (the rows travel as multi-row VALUES on SQLite and as one array per column on
 * PostgreSQL), and the summaries grow by exactly the rows a batch's insert wrote however new,
 * stored and repeated records are mixed in it and across its statements.
 */
function sinkSuite(open: () => Promise<DataSource>) {
  let ds: DataSource;
  let sink: DatabaseUsageSink;
  beforeAll(async () => {
    ds = await open();
    sink = new DatabaseUsageSink(ds);
  });
  afterAll(async () => {
    await ds?.destroy();
  });

  /** Every summary table's rows in key order, numbers as text (BIGINT comes back as text on PostgreSQL). */
  async function summaries(): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const s of SUMMARIES) {
      const rows: Record<string, unknown>[] = await ds.query(`SELECT * FROM ${s.table} ORDER BY ${s.keys.join(', ')}`);
      out[s.table] = rows.map((r) => JSON.stringify(Object.entries(r).map(([k, v]) => [k, String(v)])));
    }
    return out;
  }

  it('stores every field exactly as recorded, whatever characters its text holds', async () => {
    const awkward = ['a "quoted" {brace}, comma', 'back\\slash and \\"', 'NULL', '', 'ünïcødé ✓ 🚀', "it's; DROP TABLE llm_usage; --", '{}', 'tab\tnew\nline'];
    const records: UsageRecord[] = awkward.map((text, i) =>
      usageRecord({
        createdAtMs: Date.now() - i * 1_000,
        taskId: text,
        userId: i % 2 ? text : null,
        traceId: i % 3 ? null : 'f'.repeat(32),
        provider: 'openai',
        requestedModel: `model ${text}`,
        responseModel: i % 2 ? null : text,
        costNanos: i === 0 ? Number.MAX_SAFE_INTEGER : i === 1 ? null : 1 + i,
        unpriced: i === 1,
        priceSource: i === 1 ? null : text,
        latencyMs: [0.1 + 0.2, 1e-7, 123456.789, 5e-324, 1 / 3, 0, 2 ** 40 + 0.5, 99.99][i],
        timeToFirstTokenMs: i % 2 ? null : 1 / 7,
        streamed: i % 2 === 0,
        status: i % 4 === 3 ? 'error' : 'success',
        errorType: i % 4 === 3 ? text.slice(0, 64) : null,
        estimated: i % 3 === 0,
        tags: i % 2 ? { team: text, 'key "x"': 'v\\' } : undefined,
      }),
    );
    expect(await sink.write(records)).toEqual({ rejected: [] });
    const stored = await ds.getRepository(LlmUsage).find({ where: records.map((r) => ({ id: r.id })) });
    const byId = new Map(stored.map((s) => [s.id, s]));
    for (const r of records) {
      const { tags, ...fields } = r;
      expect({ ...byId.get(r.id) }).toEqual({ ...fields, tags: tags ?? null });
    }
  });

  it('a batch mixing new, stored and repeated records adds exactly its new records to every summary, across statements', async () => {
    const rnd = seededRandom(7);
    const hourAgo = Date.now() - 3_600_000;
    const make = (n: number) =>
      Array.from({ length: n }, () =>
        usageRecord({
          createdAtMs: hourAgo - Math.floor(rnd() * 3 * 86_400_000),
          taskId: rnd() < 0.3 ? null : `task-${Math.floor(rnd() * 30)}`,
          userId: rnd() < 0.2 ? null : `u${Math.floor(rnd() * 8)}`,
          requestedModel: `m-${Math.floor(rnd() * 4)}`,
          costNanos: rnd() < 0.05 ? null : Math.floor(rnd() * 5_000_000_000),
          latencyMs: rnd() * 3_000,
          status: rnd() < 0.1 ? 'error' : 'success',
          estimated: rnd() < 0.1,
        }),
      );
    const stored = make(450);
    await sink.write(stored);
    const fresh = make(500);
    // 450 stored records first (a whole 400-row statement on SQLite that inserts nothing), then new
    // ones with stored ones and repeats of new ones in between.
    const batch: UsageRecord[] = [...stored];
    fresh.forEach((r, i) => {
      batch.push(r);
      if (i % 3 === 0) batch.push(stored[i % stored.length]);
      if (i % 5 === 0) batch.push(r);
    });
    expect(batch.length).toBeGreaterThan(1_000);
    expect(await sink.write(batch)).toEqual({ rejected: [] });

    const all = [...stored, ...fresh];
    const ids = new Set(all.map((r) => r.id));
    const [{ n }] = await ds.query(`SELECT COUNT(*) AS n FROM llm_usage WHERE id IN (${[...ids].map((id) => `'${id}'`).join(', ')})`);
    expect(Number(n)).toBe(all.length);
    const [h] = await ds.query(`SELECT SUM(requests) AS n, CAST(SUM(cost_nanos) AS TEXT) AS cost FROM llm_usage_hourly`);
    const [raw] = await ds.query('SELECT COUNT(*) AS n, CAST(SUM(cost_nanos) AS TEXT) AS cost FROM llm_usage');
    expect([Number(h.n), String(h.cost)]).toEqual([Number(raw.n), String(raw.cost)]);
    // What the sink wrote is what a rebuild from the raw rows gives, row for row.
    const written = await summaries();
    await rebuildRollups(ds, null);
    expect(await summaries()).toEqual(written);
  });
}

describe('database usage sink (SQLite)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'asa-sink-writes-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  sinkSuite(async () => {
    const ds = await new DataSource({ ...buildTypeOrmOptions({ type: 'sqlite', path: join(dir, 'usage.db') }), entities: [LlmUsage], logging: false }).initialize();
    await ds.runMigrations({ transaction: 'each' });
    return ds;
  });
});

describePostgres('database usage sink', () => {
  let db: ScratchDatabase;
  afterAll(async () => {
    await db?.drop();
  });
  sinkSuite(async () => {
    db = await createScratchPostgres();
    const ds = await new DataSource({ ...buildTypeOrmOptions({ type: 'postgres', url: db.url }), entities: [LlmUsage], logging: false }).initialize();
    await ds.runMigrations({ transaction: 'each' });
    return ds;
  });
});
