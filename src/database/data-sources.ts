import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { OPEN_READONLY, OPEN_READWRITE } from 'sqlite3';
import { DataSource, DataSourceOptions } from 'typeorm';
import type { SqliteDriver } from 'typeorm/driver/sqlite/SqliteDriver';
import type { DatabaseConfig } from '../config/database.config';
import { SQLITE_DRIVER } from './typeorm-options';

/**
 * The DataSource API reads go through (usage API, task reads, /health).
 *
 * TypeORM's SQLite driver has a single connection, so a read queued behind a write that waits
 * for another process's lock (busy_timeout) waited with it. In WAL mode a reader never waits for
 * a writer, so on SQLite reads get a connection of their own, opened read-only on the same file.
 * On PostgreSQL the read side is the main pool, whose connections do not block each other.
 */
export const READ_DATA_SOURCE = Symbol('READ_DATA_SOURCE');

/**
 * The DataSource for single-statement writes that must stand on their own (task state).
 *
 * On TypeORM's one SQLite connection, a statement issued while another caller has a transaction
 * open (the usage sink writes each batch in one) runs inside that transaction: it is not visible
 * to other connections until that COMMIT, and a ROLLBACK of the batch (a lock, a refused row)
 * silently undoes it although it reported success. On SQLite these writes therefore get a
 * connection of their own, which SQLite's file lock (busy_timeout) serialises with the others.
 * On PostgreSQL every transaction has its own pooled connection, so it is the main pool.
 */
export const WRITE_DATA_SOURCE = Symbol('WRITE_DATA_SOURCE');

/**
 * Read DataSources for the statements one request issues together (the usage overview's groupings,
 * the task metrics): the read side first. On SQLite one connection runs one statement at a time
 * (see `oneStatementAtATime`), so a second read-only connection lets two statements run at once on
 * libuv's thread pool; a read-only connection in WAL mode never waits for a lock, so it holds a
 * thread only while it reads. On PostgreSQL the read side alone: its pool already runs them at once.
 */
export const PARALLEL_READ_DATA_SOURCES = Symbol('PARALLEL_READ_DATA_SOURCES');

export const InjectReadDataSource = (): ParameterDecorator => Inject(READ_DATA_SOURCE);
export const InjectParallelReadDataSources = (): ParameterDecorator => Inject(PARALLEL_READ_DATA_SOURCES);
export const InjectWriteDataSource = (): ParameterDecorator => Inject(WRITE_DATA_SOURCE);

/**
 * Makes a SQLite connection run one statement at a time (node-sqlite3's serialized mode).
 *
 * node-sqlite3 runs each statement on libuv's thread pool (4 threads by default, shared with file
 * I/O such as the usage journal's fdatasync and with DNS look-ups). A statement that waits for
 * another connection's write lock sleeps in its thread for up to busy_timeout. Left parallel,
 * the task-state connection's heartbeats and claims could fill every thread waiting for the lock
 * of the main connection's open usage transaction, whose own next statement (its COMMIT) then
 * found no thread to run on: a stall of busy_timeout seconds, repeated under load, and no file
 * I/O meanwhile. Serialized, each connection holds at most one thread.
 */
export function oneStatementAtATime(ds: DataSource): DataSource {
  if (ds.options.type === 'sqlite') (ds.driver as SqliteDriver).databaseConnection.serialize();
  return ds;
}

/** The main DataSource (TypeORM's own, migrations and the usage sink's transactions), see `oneStatementAtATime`. */
export async function openMainDataSource(options: DataSourceOptions): Promise<DataSource> {
  return oneStatementAtATime(await new DataSource(options).initialize());
}

/** A second connection to the main SQLite file; the main DataSource has created it, run the migrations and switched it to WAL. */
async function openSqlite(main: DataSource, db: DatabaseConfig, name: string, flags: number): Promise<DataSource> {
  // A second connection to ':memory:' would be another, empty database.
  if (db.type !== 'sqlite' || db.path === ':memory:') return main;
  const ds = new DataSource({
    type: 'sqlite',
    driver: SQLITE_DRIVER,
    name,
    database: db.path,
    flags,
    busyTimeout: db.busyTimeoutMs ?? 5_000,
    entities: main.options.entities,
    synchronize: false,
    migrationsRun: false,
    logging: main.options.logging,
  });
  return oneStatementAtATime(await ds.initialize());
}

export const openReadDataSource = (main: DataSource, db: DatabaseConfig) => openSqlite(main, db, 'read', OPEN_READONLY);
export const openWriteDataSource = (main: DataSource, db: DatabaseConfig) => openSqlite(main, db, 'write', OPEN_READWRITE);

/** See PARALLEL_READ_DATA_SOURCES: `read`, and on a SQLite file a second read-only connection. */
export async function openParallelReadDataSources(main: DataSource, db: DatabaseConfig, read: DataSource): Promise<DataSource[]> {
  const second = await openSqlite(main, db, 'read-2', OPEN_READONLY);
  return second === main ? [read] : [read, second];
}

/** Closes the extra SQLite connections with the application (after the main one's last use). */
@Injectable()
export class DataSourcesLifecycle implements OnApplicationShutdown {
  constructor(
    @InjectReadDataSource() private readonly read: DataSource,
    @InjectWriteDataSource() private readonly write: DataSource,
    @InjectParallelReadDataSources() private readonly reads: DataSource[],
    @InjectDataSource() private readonly main: DataSource,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    for (const ds of new Set([this.read, this.write, ...this.reads])) if (ds !== this.main && ds.isInitialized) await ds.destroy();
  }
}
