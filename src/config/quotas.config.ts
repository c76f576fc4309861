import { registerAs } from '@nestjs/config';
import { resolve } from 'node:path';
import { validateEnv } from './env.validation';

export const DEFAULT_QUOTAS_FILE = 'config/quotas.json';

export const quotasConfig = registerAs('quotas', () => {
  const env = validateEnv(process.env);
  return {
    /** Rules file (`{ "rules": [...] }`); the default file may be missing, a named one must exist. */
    file: resolve(env.QUOTAS_FILE ?? DEFAULT_QUOTAS_FILE),
    fileRequired: env.QUOTAS_FILE !== undefined && env.QUOTAS_FILE !== '',
    /** Calendar windows (day, week, month) start at midnight in this IANA time zone. */
    timeZone: env.QUOTA_TIMEZONE ?? 'UTC',
    /** Seconds between scheduled evaluations (one replica evaluates each tick). */
    evaluationIntervalS: env.QUOTA_EVALUATION_INTERVAL_S ?? 60,
    /**
     * Length of a reservation slot: a reservation its process never settles (a crash) is released
     * one to two slots after it was taken. Longer than the longest call (timeout x retries, long
     * streams), or a live call's reservation could be released early.
     */
    reservationTtlS: env.QUOTA_RESERVATION_TTL_S ?? 900,
  };
});
export type QuotasConfig = ReturnType<typeof quotasConfig>;
