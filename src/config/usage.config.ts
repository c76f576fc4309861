import { registerAs } from '@nestjs/config';
import { resolve } from 'node:path';
import { pluginList } from '../modules/plugins/plugin-kinds';
import { parseDatabaseUrl } from './database.config';
import { validateEnv } from './env.validation';

/** Journal folder when USAGE_JOURNAL_DIR is unset and the database is not a SQLite file. */
export const DEFAULT_JOURNAL_DIR = 'data/journal';

/**
 * Default journal folder: beside a SQLite file (`data/asa.db` → `data/asa.db.usage-journal`), so
 * the journal travels with the database it feeds; `data/journal` for PostgreSQL. The folder is
 * not named `asa.db-journal`: that is the name of SQLite's own rollback journal.
 */
export function defaultJournalDir(databaseUrl: string | undefined): string {
  const db = parseDatabaseUrl(databaseUrl);
  if (db.type === 'sqlite' && db.path !== ':memory:') return `${db.path}.usage-journal`;
  return resolve(DEFAULT_JOURNAL_DIR);
}

export const usageConfig = registerAs('usage', () => {
  const env = validateEnv(process.env);
  return {
    batchSize: env.USAGE_BATCH_SIZE ?? 500,
    flushIntervalMs: env.USAGE_FLUSH_INTERVAL_MS ?? 250,
    queueCapacity: env.USAGE_QUEUE_CAPACITY ?? 10_000,
    /** Module paths of extra sinks, comma separated (README, "Plugins"). */
    sinkPlugins: pluginList(env.USAGE_SINK_PLUGINS),
    retention: {
      /** Raw `llm_usage` rows older than this many days are deleted (rollups are kept); null keeps them forever. */
      rawDays: env.USAGE_RAW_RETENTION_DAYS ?? null,
      /** How often the retention job runs. */
      intervalMs: env.USAGE_RETENTION_INTERVAL_MS ?? 600_000,
      /** Rows deleted per statement: short transactions, so writers never wait long. */
      batchSize: 1_000,
    },
    journal: {
      /** USAGE_JOURNAL=off turns the crash journal off (tests that do not want it); on by default. */
      enabled: env.USAGE_JOURNAL ?? true,
      /**
       * What a call waits for before its request is sent: `disk` (default), its start entry on the
       * disk (fdatasync), which survives a power loss; `os`, the entry handed to the operating
       * system (write), which survives the process dying, flushed to the disk right after.
       */
      sync: env.USAGE_JOURNAL_SYNC ?? 'disk',
      dir: env.USAGE_JOURNAL_DIR ? resolve(env.USAGE_JOURNAL_DIR) : defaultJournalDir(env.DATABASE_URL),
    },
  };
});
export type UsageConfig = ReturnType<typeof usageConfig>;
