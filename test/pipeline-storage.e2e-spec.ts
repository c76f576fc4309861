import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { createTestApp, TestApp } from './support/create-app';
import { sqlite, TcpProxy, waitFor } from './support/pipeline';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';
import { usageRecord } from './support/usage-records';

const dbStat = (t: TestApp) => t.app.get(UsageRecorder).stats().find((s) => s.sink === 'database')!;

describe('usage pipeline: SQLite locked by another process', () => {
  let dir: string;
  let t: TestApp;
  let file: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'asa-lock-'));
    file = join(dir, 'asa.db');
    // A short busy_timeout so the lock outlasts it many times over within a short test.
    t = await createTestApp({ env: { DATABASE_URL: `sqlite:${file}`, SQLITE_BUSY_TIMEOUT_MS: '100' } });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('loses no record and writes no duplicate while the database is locked past busy_timeout', async () => {
    const recorder = t.app.get(UsageRecorder);
    const before = Array.from({ length: 50 }, () => usageRecord());
    for (const r of before) await recorder.record(r);
    await recorder.flush();

    const locker = sqlite(file);
    await locker.run('PRAGMA busy_timeout = 0; BEGIN EXCLUSIVE;');
    const during = Array.from({ length: 300 }, () => usageRecord());
    try {
      for (const r of during) await recorder.record(r);
      // The sink keeps failing with SQLITE_BUSY and retrying; nothing is dropped.
      await waitFor('three failed writes', () => dbStat(t).failedWrites >= 3);
      expect(dbStat(t)).toMatchObject({ dropped: 0 });
      expect(dbStat(t).queued).toBeGreaterThan(0);
    } finally {
      await locker.run('COMMIT;');
    }
    // Redelivering records that are already stored must not duplicate them (idempotent ids).
    for (const r of before.slice(0, 10)) await recorder.record(r);
    await recorder.flush();

    const rows = await locker.all<{ n: number; d: number }>('SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS d FROM llm_usage');
    const ids = new Set((await locker.all<{ id: string }>('SELECT id FROM llm_usage')).map((r) => r.id));
    await locker.close();
    expect(rows[0]).toEqual({ n: 350, d: 350 });
    for (const r of [...before, ...during]) expect(ids.has(r.id)).toBe(true);
    expect(dbStat(t)).toMatchObject({ dropped: 0, queued: 0 });
  }, 60_000);
});

describePostgres('usage pipeline: PostgreSQL briefly unreachable', () => {
  let db: ScratchDatabase;
  let proxy: TcpProxy;
  let t: TestApp;

  beforeAll(async () => {
    db = await createScratchPostgres();
    const target = new URL(db.url);
    proxy = new TcpProxy(Number(target.port || 5432));
    await proxy.start();
    const viaProxy = new URL(db.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    t = await createTestApp({ env: { DATABASE_URL: viaProxy.toString() } });
  });
  afterAll(async () => {
    await t?.close();
    await proxy?.stop();
    await db?.drop();
  });

  it('loses nothing and duplicates nothing when the connection drops and comes back', async () => {
    const recorder = t.app.get(UsageRecorder);
    const before = Array.from({ length: 100 }, () => usageRecord());
    for (const r of before) await recorder.record(r);
    await recorder.flush();

    await proxy.stop();
    const during = Array.from({ length: 300 }, () => usageRecord());
    for (const r of during) await recorder.record(r);
    await waitFor('two failed writes', () => dbStat(t).failedWrites >= 2);
    expect(dbStat(t)).toMatchObject({ dropped: 0 });
    await proxy.start();
    for (const r of before.slice(0, 10)) await recorder.record(r);
    await recorder.flush();

    const direct = new Client({ connectionString: db.url });
    await direct.connect();
    try {
      const { rows } = await direct.query<{ n: string; d: string }>('SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS d FROM llm_usage');
      expect(rows[0]).toEqual({ n: '400', d: '400' });
      const ids = new Set((await direct.query<{ id: string }>('SELECT id FROM llm_usage')).rows.map((r) => r.id));
      for (const r of [...before, ...during]) expect(ids.has(r.id)).toBe(true);
    } finally {
      await direct.end();
    }
    expect(dbStat(t)).toMatchObject({ dropped: 0, queued: 0 });
  }, 60_000);

  it('also survives its connections being terminated by the server (pg_terminate_backend)', async () => {
    const recorder = t.app.get(UsageRecorder);
    const admin = new Client({ connectionString: db.url });
    await admin.connect();
    try {
      const name = new URL(db.url).pathname.slice(1);
      const records = Array.from({ length: 200 }, () => usageRecord());
      const writes = (async () => {
        for (const r of records) await recorder.record(r);
      })();
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);
      await writes;
      await recorder.flush();
      const { rows } = await admin.query<{ n: string }>('SELECT COUNT(*) AS n FROM llm_usage WHERE id = ANY($1)', [records.map((r) => r.id)]);
      expect(rows[0].n).toBe('200');
    } finally {
      await admin.end();
    }
  }, 60_000);
});
