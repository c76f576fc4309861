import { ValidationPipe } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { AllExceptionsFilter } from './common/http-exception.filter';
import { installRequestInputChecks } from './common/request-input';
import { bodyLimits } from './common/body-limits';
import { isOpenAiPath, openAiError } from './common/openai-error';
import { validationExceptionFactory } from './common/validation-messages';

/** Longest path parameter Fastify routes (its default); a longer one is a 414 before any handler. */
const MAX_PARAM_LENGTH = 100;

/**
 * The HTTP adapter main.ts, the demo and the tests build the application on. Errors Fastify answers
 * itself, before routing (a path parameter over MAX_PARAM_LENGTH characters, a %-escape that does
 * not decode), get the service's error shape and a message that does not echo the whole path.
 */
export function createHttpAdapter(opts: { trustProxy?: boolean } = {}): FastifyAdapter {
  const limits = bodyLimits();
  return new FastifyAdapter({
    trustProxy: opts.trustProxy ?? false,
    // Fastify's own check, at the largest limit; each route's own is checked in request-input.ts.
    bodyLimit: Math.max(limits.api, limits.gateway),
    // Under routerOptions: Fastify 5 deprecates the top-level router options (warning FSTDEP022).
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    frameworkErrors: (error: FastifyError, _req: FastifyRequest, reply: FastifyReply) => {
      const status = error.statusCode ?? 400;
      const message =
        error.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? `a path parameter is longer than ${MAX_PARAM_LENGTH} characters`
          : error.code === 'FST_ERR_BAD_URL'
            ? 'the URL is not valid: a %-escape in its path does not decode'
            : error.message;
      void reply.code(status).send({ statusCode: status, error: STATUS_CODES[status] ?? 'Error', code: error.code, message });
    },
  });
}

/**
 * Everything main.ts applies to the application besides listening, in one place, so the
 * end-to-end tests boot exactly what production runs.
 */
export function setupApp(app: NestFastifyApplication, opts: { shutdownOnSignals?: boolean } = {}): void {
  app.useGlobalPipes(
    new ValidationPipe({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      stopAtFirstError: false,
      exceptionFactory: validationExceptionFactory,
    }),
  );
  app.useGlobalFilters(new AllExceptionsFilter(app.get(HttpAdapterHost)));
  // Every body this API takes is JSON. Without this, Fastify would parse form and text bodies and
  // the validation errors would describe a body the caller never meant to send.
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onRequest', (req, reply, done) => {
      const type = req.headers['content-type'];
      const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
      if (hasBody && type !== undefined && !/^application\/json\s*(;|$)/i.test(type)) {
        const message = `send the request body as JSON with Content-Type: application/json (got ${type.slice(0, 100)})`;
        void reply
          .code(415)
          .send(isOpenAiPath(req.url) ? openAiError(415, message) : { statusCode: 415, error: 'Unsupported Media Type', message });
        return;
      }
      done();
    });
  installRequestInputChecks(app);
  // Off only for an embedding process that handles SIGINT/SIGTERM itself and calls app.close() (the demo).
  if (opts.shutdownOnSignals !== false) app.enableShutdownHooks();

  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('asa-backend')
      .setDescription(
        'Runs LLM-powered tasks and accounts for every LLM call: tokens, exact cost, latency, success. ' +
          'Costs are in USD; `*_cost_usd` numbers are rounded to the nano-dollar, `*_cost_usd_exact` strings are exact.',
      )
      .setVersion('0.1.0')
      .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'asa_ API key', description: 'API key from `npm run apikey` (see README, "Access control")' })
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
}
