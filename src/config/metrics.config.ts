import { registerAs } from '@nestjs/config';
import { validateEnv } from './env.validation';

export const metricsConfig = registerAs('metrics', () => {
  const env = validateEnv(process.env);
  return {
    /** Extra, higher-cardinality labels allowed on LLM metrics (only `user` today). */
    extraLabels: (env.METRICS_EXTRA_LABELS ?? '').split(',').filter(Boolean) as 'user'[],
  };
});
export type MetricsConfig = ReturnType<typeof metricsConfig>;
