import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { Database } from 'sqlite3';
import { DataSource } from 'typeorm';
import { databaseUnavailableReason, isPermanentDataError } from './database-errors';

/** The error a real call fails with. */
async function failure(work: () => Promise<unknown>): Promise<unknown> {
  try {
    await work();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

const exec = (db: Database, sql: string) => new Promise<void>((res, rej) => db.exec(sql, (err) => (err ? rej(err) : res())));

describe('databaseUnavailableReason', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'asa-dberr-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('recognises a refused PostgreSQL connection and one dropped by the server', async () => {
    // A port nothing listens on.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const refused = await failure(() => new Client({ host: '127.0.0.1', port, user: 'x', database: 'x' }).connect());
    expect(databaseUnavailableReason(refused)).toBe('connection refused');

    // A server that accepts and hangs up at once: pg reports "Connection terminated unexpectedly" (no code).
    const rude = createServer((s) => s.destroy());
    await new Promise<void>((r) => rude.listen(0, '127.0.0.1', r));
    try {
      const dropped = await failure(() => new Client({ host: '127.0.0.1', port: (rude.address() as { port: number }).port, user: 'x', database: 'x' }).connect());
      expect(databaseUnavailableReason(dropped)).toBe('connection lost');
    } finally {
      await new Promise<void>((r) => rude.close(() => r()));
    }
  });

  it('recognises SQLITE_BUSY through TypeORM, and not a constraint violation', async () => {
    const file = join(dir, 'busy.db');
    const ds = await new DataSource({ type: 'sqlite', database: file }).initialize();
    await ds.query('CREATE TABLE t (id INTEGER PRIMARY KEY)');
    const locker = new Database(file);
    await exec(locker, 'BEGIN IMMEDIATE');
    try {
      const busy = await failure(() => ds.query('INSERT INTO t (id) VALUES (1)'));
      expect(databaseUnavailableReason(busy)).toMatch(/locked/);
      expect(isPermanentDataError(busy)).toBe(false);
    } finally {
      await exec(locker, 'ROLLBACK');
      await new Promise<void>((r) => locker.close(() => r()));
    }
    await ds.query('INSERT INTO t (id) VALUES (1)');
    const duplicate = await failure(() => ds.query('INSERT INTO t (id) VALUES (1)'));
    expect(databaseUnavailableReason(duplicate)).toBeNull();
    expect(isPermanentDataError(duplicate)).toBe(true);
    await ds.destroy();
  });

  it('leaves other errors alone', () => {
    expect(databaseUnavailableReason(new TypeError('x is not a function'))).toBeNull();
    expect(databaseUnavailableReason(undefined)).toBeNull();
    expect(databaseUnavailableReason('ECONNREFUSED')).toBeNull();
  });
});
