import { registerAs } from '@nestjs/config';
import { isAbsolute, resolve } from 'node:path';
import { validateEnv } from './env.validation';

export const DEFAULT_SQLITE_PATH = 'data/asa.db';

export type DatabaseConfig =
  | { type: 'sqlite'; path: string; busyTimeoutMs?: number }
  | { type: 'postgres'; url: string };

/**
 * `DATABASE_URL` forms: unset (SQLite at data/asa.db), `sqlite:relative/or/absolute.db`,
 * `sqlite:///absolute.db`, `sqlite://relative.db`, `postgres://user@host:5432/db`.
 */
export function parseDatabaseUrl(url: string | undefined): DatabaseConfig {
  if (!url) return { type: 'sqlite', path: resolve(DEFAULT_SQLITE_PATH) };
  if (url.startsWith('sqlite:')) {
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path === ':memory:') return { type: 'sqlite', path };
    return { type: 'sqlite', path: isAbsolute(path) ? path : resolve(path) };
  }
  return { type: 'postgres', url };
}

export const databaseConfig = registerAs('database', (): DatabaseConfig => {
  const env = validateEnv(process.env);
  const db = parseDatabaseUrl(env.DATABASE_URL);
  return db.type === 'sqlite' && env.SQLITE_BUSY_TIMEOUT_MS !== undefined ? { ...db, busyTimeoutMs: env.SQLITE_BUSY_TIMEOUT_MS } : db;
});
