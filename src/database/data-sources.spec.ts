import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DataSource } from 'typeorm';
import type { DatabaseConfig } from '../config/database.config';
import { openMainDataSource, openWriteDataSource } from './data-sources';
import { buildTypeOrmOptions } from './typeorm-options';

describe('SQLite connections of one process', () => {
  let dir: string;
  let main: DataSource;
  let write: DataSource;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'asa-conns-'));
    // Long enough that a statement given up by its busy wait means a stall, not a slow machine.
    const db: DatabaseConfig = { type: 'sqlite', path: join(dir, 'asa.db'), busyTimeoutMs: 4_000 };
    main = await openMainDataSource({ ...buildTypeOrmOptions(db), migrationsRun: false });
    write = await openWriteDataSource(main, db);
    await main.query('CREATE TABLE t (id INTEGER PRIMARY KEY)');
  });
  afterAll(async () => {
    await write?.destroy();
    await main?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  // The task runner's heartbeats (write connection) arriving while a usage batch holds the
  // write lock in a transaction (main connection). Left parallel, node-sqlite3 put every waiting
  // statement on libuv's thread pool, which they filled, busy-waiting for a lock whose COMMIT
  // then had no thread to run on: each of them failed with SQLITE_BUSY after busy_timeout.
  it('many writes waiting for the lock of an open transaction all go through once it commits', async () => {
    const runner = main.createQueryRunner();
    await runner.startTransaction();
    await runner.query('INSERT INTO t (id) VALUES (0)');
    const waiting = Array.from({ length: 8 }, (_, i) => write.query('INSERT INTO t (id) VALUES (?)', [i + 1]));
    await sleep(100); // let them reach the lock
    await runner.commitTransaction();
    await runner.release();
    const outcomes = await Promise.allSettled(waiting);
    expect(outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason))).toEqual([]);
    expect(await main.query('SELECT COUNT(*) AS n FROM t')).toEqual([{ n: 9 }]);
  }, 30_000);
});
