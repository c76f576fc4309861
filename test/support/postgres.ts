import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { TEST_DATABASE_URL } from './create-app';

export interface ScratchDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * A fresh, empty PostgreSQL database on the server named by TEST_DATABASE_URL, so suites
 * (and developers running them at the same time) never share tables. Drop it when done.
 */
export async function createScratchPostgres(): Promise<ScratchDatabase> {
  if (!TEST_DATABASE_URL) throw new Error('TEST_DATABASE_URL is not set');
  const name = `asa_test_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new Client({ connectionString: TEST_DATABASE_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** `describe` for a PostgreSQL suite: runs when TEST_DATABASE_URL is set, else is reported as skipped. */
export const describePostgres = (name: string, fn: () => void) =>
  TEST_DATABASE_URL
    ? describe(`${name} (PostgreSQL)`, fn)
    : describe.skip(`${name} (PostgreSQL) [skipped: TEST_DATABASE_URL is not set]`, fn);
