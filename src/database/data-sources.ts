import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { OPEN_READONLY, OPEN_READWRITE } from 'sqlite3';
import { DataSource } from 'typeorm';
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

export const InjectReadDataSource = (): ParameterDecorator => Inject(READ_DATA_SOURCE);
export const InjectWriteDataSource = (): ParameterDecorator => Inject(WRITE_DATA_SOURCE);

/** A second connection to the main SQLite file; the main DataSource has created it, run the migrations and switched it to WAL. */
async function openSqlite(main: DataSource, db: DatabaseConfig, name: string, flags: number): Promise<DataSource> {
  // A second connection to ':memory:' would be another, empty database.
  if (db.type !== 'sqlite' || db.path === ':memory:') return main;
  return new DataSource({
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
  }).initialize();
}

export const openReadDataSource = (main: DataSource, db: DatabaseConfig) => openSqlite(main, db, 'read', OPEN_READONLY);
export const openWriteDataSource = (main: DataSource, db: DatabaseConfig) => openSqlite(main, db, 'write', OPEN_READWRITE);

/** Closes the extra SQLite connections with the application (after the main one's last use). */
@Injectable()
export class DataSourcesLifecycle implements OnApplicationShutdown {
  constructor(
    @InjectReadDataSource() private readonly read: DataSource,
    @InjectWriteDataSource() private readonly write: DataSource,
    @InjectDataSource() private readonly main: DataSource,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    for (const ds of [this.read, this.write]) if (ds !== this.main && ds.isInitialized) await ds.destroy();
  }
}
