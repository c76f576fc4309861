import { registerAs } from '@nestjs/config';
import { resolve } from 'node:path';
import { pluginList } from '../modules/plugins/plugin-kinds';
import { validateEnv } from './env.validation';

export const DEFAULT_BILLING_EXPORT_DIR = 'data/exports';
export const DEFAULT_BILLING_DAILY_CRON = '15 0 * * *';
export const DEFAULT_BILLING_MONTHLY_CRON = '30 0 1 * *';

export const billingConfig = registerAs('billing', () => {
  const env = validateEnv(process.env);
  const cron = (value: string | undefined, fallback: string) => (value === undefined ? fallback : value.trim() || null);
  return {
    /** Days and months of exports (and the cron schedules) are local to this IANA time zone. */
    timeZone: env.BILLING_TIMEZONE ?? 'UTC',
    /** Schedules of the daily (previous day) and monthly (previous month) exports; null = off (set empty). */
    dailyCron: cron(env.BILLING_DAILY_CRON, DEFAULT_BILLING_DAILY_CRON),
    monthlyCron: cron(env.BILLING_MONTHLY_CRON, DEFAULT_BILLING_MONTHLY_CRON),
    exportDir: resolve(env.BILLING_EXPORT_DIR ?? DEFAULT_BILLING_EXPORT_DIR),
    /** Module paths of extra export destinations, comma separated (README, "Export destinations"). */
    destinationPlugins: pluginList(env.BILLING_EXPORT_DESTINATION_PLUGINS),
    /** A destination that has not answered after this long counts as failed for that export. */
    deliveryTimeoutMs: env.BILLING_EXPORT_DELIVERY_TIMEOUT_MS ?? 300_000,
  };
});
export type BillingConfig = ReturnType<typeof billingConfig>;
