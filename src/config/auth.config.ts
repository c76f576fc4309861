import { registerAs } from '@nestjs/config';
import { resolve } from 'node:path';
import { validateEnv } from './env.validation';

export const DEFAULT_API_KEYS_FILE = 'config/api-keys.json';

export const authConfig = registerAs('auth', () => {
  const env = validateEnv(process.env);
  return {
    /** JSON file of hashed API keys; absent file means "no keys configured". */
    apiKeysFile: resolve(env.API_KEYS_FILE ?? DEFAULT_API_KEYS_FILE),
    /** Named explicitly: then a missing file is an error (a typo must not open the API), not "no keys". */
    apiKeysFileRequired: env.API_KEYS_FILE !== undefined,
    metricsRequireAuth: env.METRICS_REQUIRE_AUTH ?? false,
  };
});
export type AuthConfig = ReturnType<typeof authConfig>;
