import { registerAs } from '@nestjs/config';
import { validateEnv } from './env.validation';

export const metricsConfig = registerAs('metrics', () => {
  const env = validateEnv(process.env);
  return {
    /** Extra, higher-cardinality labels allowed on LLM metrics (only `user` today). */
    extraLabels: (env.METRICS_EXTRA_LABELS ?? '').split(',').filter(Boolean) as 'user'[],
    /** LLM metric series of a model unused this long are removed from /metrics (0: never). */
    modelSeriesTtlMs: (env.METRICS_MODEL_SERIES_TTL_HOURS ?? 24) * 3_600_000,
    /** Distinct models with their own LLM metric series; the calls of further ones are counted under model="(other)" (0: no limit). */
    maxModels: env.METRICS_MAX_MODELS ?? 200,
  };
});
export type MetricsConfig = ReturnType<typeof metricsConfig>;
