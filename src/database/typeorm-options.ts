import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DataSourceOptions } from 'typeorm';
import type { DatabaseConfig } from '../config/database.config';
import { MIGRATIONS } from './migration-list';

/** How long a query waits to get a PostgreSQL connection before it fails as "database unavailable". */
const POSTGRES_CONNECT_TIMEOUT_MS = 5_000;

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
    database: db.path,
    // WAL lets the usage API read while the sink writes; busy_timeout rides out short locks
    // taken by other processes (a backup, an operator's sqlite3 shell) instead of failing at once.
    busyTimeout: db.busyTimeoutMs ?? 5_000,
    enableWAL: true,
  } as DataSourceOptions;
}
