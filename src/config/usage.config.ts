import { registerAs } from '@nestjs/config';
import { validateEnv } from './env.validation';

export const usageConfig = registerAs('usage', () => {
  const env = validateEnv(process.env);
  return {
    batchSize: env.USAGE_BATCH_SIZE ?? 500,
    flushIntervalMs: env.USAGE_FLUSH_INTERVAL_MS ?? 250,
    queueCapacity: env.USAGE_QUEUE_CAPACITY ?? 10_000,
    /** Module paths of extra sinks, comma separated (see README, "Writing a sink"). */
    sinkPlugins: (env.USAGE_SINK_PLUGINS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  };
});
export type UsageConfig = ReturnType<typeof usageConfig>;
