import 'reflect-metadata';
import { loadDotEnv } from './config/load-env';
loadDotEnv();
// Tracing must start before Nest and the instrumented libraries (http, fastify, pg) are loaded.
import { startTracing } from './modules/metrics/tracing';
startTracing();

import { ConsoleLogger, Logger } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppModule } from './app.module';
import { appConfig } from './config/app.config';
import { ApiKeyService } from './modules/auth/api-key.service';
import { setupApp } from './setup-app';

async function bootstrap(): Promise<void> {
  // Called directly (not injected) so a bad environment is reported before anything else starts.
  const config: ConfigType<typeof appConfig> = appConfig();
  const app = await NestFactory.create<NestFastifyApplication>(AppModule, new FastifyAdapter({ trustProxy: true }), {
    bufferLogs: true,
    logger: new ConsoleLogger({ json: config.logFormat === 'json' }),
  });
  setupApp(app);
  const logger = new Logger('Bootstrap');
  const keys = app.get(ApiKeyService);
  // Without API keys nobody can be told apart, so the service only listens on loopback.
  const host = config.host ?? (keys.hasKeys() ? '0.0.0.0' : '127.0.0.1');
  if (!keys.hasKeys()) {
    logger.warn(`no API keys configured: the API is unauthenticated and listens on ${host} only`);
  }
  await app.listen(config.port, host);
  logger.log(`asa-backend listening on http://${host === '0.0.0.0' ? 'localhost' : host}:${config.port} (docs at /docs)`);
}

bootstrap().catch((err: unknown) => {
  // Configuration errors name the bad variable; print them plainly and exit non-zero.
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
