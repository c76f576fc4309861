/**
 * `npm run rollups:rebuild`: rebuilds the usage rollups (llm_usage_hourly, llm_usage_task_totals)
 * from the raw llm_usage rows of the database DATABASE_URL names, after running any pending
 * migration. Safe while the service runs: one transaction, and the sink's later batches add to
 * the rebuilt rows. Hours whose raw rows retention deleted keep their rollups.
 */
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { databaseConfig } from '../src/config/database.config';
import { loadDotEnv } from '../src/config/load-env';
import { usageConfig } from '../src/config/usage.config';
import { buildTypeOrmOptions } from '../src/database/typeorm-options';
import { rebuildRollups } from '../src/modules/usage/rollups/rollup-rebuild';

async function main(): Promise<void> {
  loadDotEnv();
  const ds = await new DataSource(buildTypeOrmOptions(databaseConfig())).initialize();
  try {
    await ds.runMigrations({ transaction: 'each' });
    const started = Date.now();
    const r = await rebuildRollups(ds, usageConfig().retention.rawDays);
    const from = r.fromHourMs === null ? 'no raw rows: nothing rebuilt' : `rebuilt from ${new Date(r.fromHourMs).toISOString()}`;
    process.stdout.write(`rollups: ${from}; ${r.hourlyRows} hourly rows, ${r.taskRows} task rows (${Date.now() - started} ms)\n`);
  } finally {
    await ds.destroy();
  }
}

main().catch((err) => {
  process.stderr.write(`rollups:rebuild failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
