import { registerAs } from '@nestjs/config';
import { validateEnv } from './env.validation';

export const appConfig = registerAs('app', () => {
  const env = validateEnv(process.env);
  return {
    port: env.PORT ?? 8000,
    /** Explicit bind address; when unset, the auth module decides (127.0.0.1 without API keys). */
    host: env.HOST ?? null,
    nodeEnv: env.NODE_ENV ?? 'development',
    logFormat: (env.LOG_FORMAT ?? (env.NODE_ENV === 'production' ? 'json' : 'pretty')) as 'pretty' | 'json',
    /** NO_COLOR (https://no-color.org) set to anything: no colour codes even on a terminal. */
    logColors: env.NO_COLOR === undefined || env.NO_COLOR === '',
    shutdownDrainTimeoutMs: env.SHUTDOWN_DRAIN_TIMEOUT_MS ?? 30_000,
  };
});
export type AppConfig = ReturnType<typeof appConfig>;
