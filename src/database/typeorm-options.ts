import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import * as sqlite3 from 'sqlite3';
import type { DataSourceOptions } from 'typeorm';
import type { DatabaseConfig } from '../config/database.config';
import { MIGRATIONS } from './migration-list';

/** How long a query waits to get a PostgreSQL connection before it fails as "database unavailable". */
const POSTGRES_CONNECT_TIMEOUT_MS = 5_000;

/**
 * The sqlite3 module as TypeORM's SQLite driver takes it, without its `verbose()` mode. TypeORM
 * calls `verbose()` on the module it loads, which rewraps every sqlite3 call of every connection
 * in the process to keep a stack trace and `util.inspect` of all its arguments (the SQL text and
 * every bound value) for error messages: a profile of the usage sink put 18 % of its CPU there,
 * about 30 µs a record. Errors still carry the driver's own message and code.
 */
export const SQLITE_DRIVER: typeof sqlite3 = Object.create(sqlite3, { verbose: { value: () => SQLITE_DRIVER } }) as typeof sqlite3;

/**
 * Builds TypeORM options for either database. Entities are registered by their modules
 * (`autoLoadEntities`); migrations are listed explicitly so they run the same from `dist` and tests.
 */
export function buildTypeOrmOptions(db: DatabaseConfig): DataSourceOptions {
  const common = {
    migrations: MIGRATIONS,
    migrationsRun: true,
    synchronize: false,
    // Not 'error': TypeORM would print every failed query with all its parameters (a retried
    // 500-row usage batch is ~100 KB a line during an outage). Callers log failures themselves.
    logging: ['warn', 'migration'] as ('warn' | 'migration')[],
  };
  if (db.type === 'postgres') {
    return {
      ...common,
      type: 'postgres',
      url: db.url,
      extra: { max: 10 },
      // Bounds both opening a connection and waiting for a free one in the pool: with an
      // unreachable server a request fails (503, see database-errors.ts) instead of hanging.
      connectTimeoutMS: POSTGRES_CONNECT_TIMEOUT_MS,
    };
  }
  if (db.path !== ':memory:') mkdirSync(dirname(db.path), { recursive: true });
  return {
    ...common,
    type: 'sqlite',
    driver: SQLITE_DRIVER,
    database: db.path,
    // WAL lets the usage API read while the sink writes; busy_timeout rides out short locks
    // taken by other processes (a backup, an operator's sqlite3 shell) instead of failing at once.
    busyTimeout: db.busyTimeoutMs ?? 5_000,
    enableWAL: true,
  } as DataSourceOptions;
}
