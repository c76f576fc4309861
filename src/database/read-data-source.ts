import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { OPEN_READONLY } from 'sqlite3';
import { DataSource } from 'typeorm';
import type { DatabaseConfig } from '../config/database.config';

/**
 * The DataSource API reads go through (usage API, task reads, /health).
 *
 * TypeORM's SQLite driver has a single connection, so a read queued behind a write that waits
 * for another process's lock (busy_timeout) waited with it. In WAL mode a reader never waits for
 * a writer, so on SQLite reads get a connection of their own, opened read-only on the same file.
 * On PostgreSQL the read side is the main pool, whose connections do not block each other.
 */
export const READ_DATA_SOURCE = Symbol('READ_DATA_SOURCE');

export const InjectReadDataSource = (): ParameterDecorator => Inject(READ_DATA_SOURCE);

export async function openReadDataSource(main: DataSource, db: DatabaseConfig): Promise<DataSource> {
  // A second connection to ':memory:' would be another, empty database.
  if (db.type !== 'sqlite' || db.path === ':memory:') return main;
  const reader = new DataSource({
    type: 'sqlite',
    name: 'read',
    database: db.path,
    // The main connection has created the file, run the migrations and switched it to WAL.
    flags: OPEN_READONLY,
    busyTimeout: db.busyTimeoutMs ?? 5_000,
    entities: main.options.entities,
    synchronize: false,
    migrationsRun: false,
    logging: main.options.logging,
  });
  return reader.initialize();
}

/** Closes the SQLite read connection with the application (after the main one's last use). */
@Injectable()
export class ReadDataSourceLifecycle implements OnApplicationShutdown {
  constructor(
    @InjectReadDataSource() private readonly read: DataSource,
    @InjectDataSource() private readonly main: DataSource,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.read !== this.main && this.read.isInitialized) await this.read.destroy();
  }
}
