import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test, TestingModuleBuilder } from '@nestjs/testing';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppModule } from '../../src/app.module';
import { createHttpAdapter, setupApp } from '../../src/setup-app';
import { TestLogger } from './test-logger';

export interface TestApp {
  app: NestFastifyApplication;
  /** Scratch folder of this app (SQLite file, workspaces); removed by close(). */
  dir: string;
  close(): Promise<void>;
}

export interface CreateAppOptions {
  /** Environment for this app; restored on close. DATABASE_URL defaults to a fresh SQLite file. */
  env?: Record<string, string | undefined>;
  /** Override only the edges (LLM provider, Slack, SMTP); everything else is the real AppModule. */
  override?: (builder: TestingModuleBuilder) => TestingModuleBuilder;
}

/** Boots the real AppModule with the same setup as main.ts, on Fastify, without listening. */
export async function createTestApp(options: CreateAppOptions = {}): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'asa-test-'));
  const env: Record<string, string | undefined> = {
    DATABASE_URL: `sqlite:${join(dir, 'asa.db')}`,
    API_KEYS_FILE: join(dir, 'no-api-keys.json'), // written empty below: no keys, and none from the checkout
    PLUGINS_FILE: join(dir, 'no-plugins.json'), // written empty below: no plugin settings from the checkout
    USAGE_FLUSH_INTERVAL_MS: '20',
    // Each app its own journal folder (the default for PostgreSQL, data/journal, would be shared).
    USAGE_JOURNAL_DIR: join(dir, 'journal'),
    // A scheduled billing export that fires during a test writes here, never into the checkout.
    BILLING_EXPORT_DIR: join(dir, 'exports'),
    ...options.env,
  };
  writeFileSync(join(dir, 'no-api-keys.json'), '{ "keys": [] }\n');
  writeFileSync(join(dir, 'no-plugins.json'), '{ "plugins": {} }\n');
  const saved = new Map<string, string | undefined>();
  for (const [k, v] of Object.entries(env)) {
    saved.set(k, process.env[k]);
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  const restoreEnv = () => {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  try {
    let builder = Test.createTestingModule({ imports: [AppModule] }).setLogger(new TestLogger());
    if (options.override) builder = options.override(builder);
    const moduleRef = await builder.compile();
    const app = moduleRef.createNestApplication<NestFastifyApplication>(createHttpAdapter(), { logger: new TestLogger() });
    setupApp(app);
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
    return {
      app,
      dir,
      close: async () => {
        try {
          await app.close();
        } finally {
          restoreEnv();
          rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    restoreEnv();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Listens on an ephemeral port on 127.0.0.1, for peers that need a real socket (Prometheus, an
 * OTLP-instrumented HTTP server span, a browser), and returns the base URL.
 */
export async function listenOnLoopback(app: NestFastifyApplication): Promise<string> {
  await app.listen(0, '127.0.0.1');
  return (await app.getUrl()).replace('[::1]', '127.0.0.1');
}

/** PostgreSQL URL for storage suites, or undefined (suites then report themselves skipped). */
export const TEST_DATABASE_URL: string | undefined = process.env.TEST_DATABASE_URL || undefined;
