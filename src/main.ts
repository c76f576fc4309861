import 'reflect-metadata';
import { loadDotEnv } from './config/load-env';
loadDotEnv();
// Tracing must start before Nest and the instrumented libraries (http, fastify, pg) are loaded.
import { startTracing } from './modules/metrics/tracing';
try {
  startTracing(); // also the first read of the environment: a bad variable stops here
} catch (err) {
  exitWithError(err);
}

import { ConsoleLogger, Logger } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { AppModule } from './app.module';
import { StartConfigError } from './common/start-config-error';
import { appConfig } from './config/app.config';
import { ApiKeyService } from './modules/auth/api-key.service';
import { createHttpAdapter, setupApp } from './setup-app';
import { startupReport } from './startup-report';

async function bootstrap(): Promise<void> {
  // Called directly (not injected) so a bad environment is reported before anything else starts.
  const config: ConfigType<typeof appConfig> = appConfig();
  const app = await NestFactory.create<NestFastifyApplication>(AppModule, createHttpAdapter({ trustProxy: true }), {
    bufferLogs: true,
    // Let start-up errors reach exitWithError instead of Nest aborting the process with a stack trace.
    abortOnError: false,
    // Colour codes only for a terminal: piped to a file or a collector they are noise.
    logger: new StartLogger({ json: config.logFormat === 'json', colors: config.logFormat === 'pretty' && config.logColors && process.stdout.isTTY === true }),
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
  for (const line of await startupReport(app, { host, port: config.port })) logger.log(line);
}

/**
 * Nest's ExceptionHandler logs an error that stops the start with its stack trace. A bad keys,
 * gateway, pricing or plugins file, a plugin that cannot be loaded or a missing sandbox is a
 * configuration problem (StartConfigError): exitWithError prints its one-line message, and the
 * stack would only bury it.
 */
class StartLogger extends ConsoleLogger {
  error(message: unknown, ...rest: unknown[]): void {
    const fromExceptionHandler = rest[rest.length - 1] === 'ExceptionHandler';
    if (fromExceptionHandler && message instanceof StartConfigError) return;
    super.error(message, ...rest);
  }
}

// Start-up errors (a bad variable, a bad keys or pricing file, an unreachable database) carry a
// message naming what to fix: print it plainly, without a stack trace, and exit non-zero.
function exitWithError(err: unknown): never {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}

bootstrap().catch(exitWithError);
