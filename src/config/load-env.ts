import { config } from 'dotenv';

/**
 * Loads `.env` into the environment before anything reads it: tracing starts before Nest
 * (and so before ConfigModule), and ENABLE_OPENTELEMETRY may live in `.env`. Real environment
 * variables win over the file.
 */
export function loadDotEnv(path = '.env'): void {
  config({ path, quiet: true });
}
