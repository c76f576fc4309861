import { registerAs } from '@nestjs/config';
import { resolve } from 'node:path';
import { validateEnv } from './env.validation';

export const authConfig = registerAs('auth', () => {
  const env = validateEnv(process.env);
  return {
    /** JSON file of hashed API keys; absent file means "no keys configured". */
    apiKeysFile: resolve(env.API_KEYS_FILE ?? 'config/api-keys.json'),
    metricsRequireAuth: env.METRICS_REQUIRE_AUTH ?? false,
  };
});
export type AuthConfig = ReturnType<typeof authConfig>;
