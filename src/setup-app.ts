import { ValidationPipe } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { AllExceptionsFilter } from './common/http-exception.filter';

/**
 * Everything main.ts applies to the application besides listening, in one place, so the
 * end-to-end tests boot exactly what production runs.
 */
export function setupApp(app: NestFastifyApplication): void {
  app.useGlobalPipes(
    new ValidationPipe({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      stopAtFirstError: false,
    }),
  );
  app.useGlobalFilters(new AllExceptionsFilter(app.get(HttpAdapterHost)));
  app.enableShutdownHooks();

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
