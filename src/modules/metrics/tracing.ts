import type { IncomingMessage } from 'node:http';
import { context, trace } from '@opentelemetry/api';
import type { NodeSDK } from '@opentelemetry/sdk-node';
import { readOtelConfig } from '../../config/otel.config';

/*
 * OpenTelemetry SDK setup. Every OpenTelemetry SDK package is loaded with `require` inside
 * startTracing, so with ENABLE_OPENTELEMETRY unset none of them is even loaded: no exporter, no
 * patched modules, no overhead. (`@opentelemetry/api`, which the LLM client and the metrics use,
 * is a no-op without an SDK.)
 */

let sdk: NodeSDK | null = null;

/** Incoming requests that never get a span: scrapes and probes would bury the real traffic. */
const UNTRACED_PATHS = new Set(['/metrics', '/health']);

/**
 * Starts the OpenTelemetry SDK when ENABLE_OPENTELEMETRY=true. Must run before NestFactory.create
 * and before the instrumented libraries (http, @nestjs/core, typeorm, pg) are first required.
 * Returns whether tracing is on.
 *
 * Exports spans over OTLP as the standard variables say (OTEL_EXPORTER_OTLP_ENDPOINT,
 * OTEL_EXPORTER_OTLP_PROTOCOL http/protobuf | http/json | grpc, OTEL_EXPORTER_OTLP_HEADERS,
 * OTEL_TRACES_SAMPLER, OTEL_BSP_*, ...); service name `asa-backend` unless OTEL_SERVICE_NAME says otherwise.
 */
export function startTracing(): boolean {
  if (sdk) return true;
  const config = readOtelConfig();
  if (!config.enabled) return false;

  /* eslint-disable @typescript-eslint/no-require-imports */
  const { NodeSDK } = require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
  const { resourceFromAttributes } = require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http') as typeof import('@opentelemetry/instrumentation-http');
  const { NestInstrumentation } = require('@opentelemetry/instrumentation-nestjs-core') as typeof import('@opentelemetry/instrumentation-nestjs-core');
  const { TypeormInstrumentation } = require('@opentelemetry/instrumentation-typeorm') as typeof import('@opentelemetry/instrumentation-typeorm');
  const { PgInstrumentation } = require('@opentelemetry/instrumentation-pg') as typeof import('@opentelemetry/instrumentation-pg');
  const { version } = require('../../../package.json') as { version: string };
  /* eslint-enable @typescript-eslint/no-require-imports */

  const instance = new NodeSDK({
    serviceName: config.serviceName,
    resource: resourceFromAttributes({ 'service.version': version }),
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (req: IncomingMessage) => UNTRACED_PATHS.has((req.url ?? '').split('?')[0]),
        // Outgoing HTTP outside any trace (webhooks fired by a timer, ...) would only make orphan traces.
        requireParentforOutgoingSpans: true,
      }),
      // Controller and handler spans under the HTTP span (`TasksController.submit`, with http.route).
      new NestInstrumentation(),
      // db.* spans for TypeORM operations on SQLite and PostgreSQL ...
      new TypeormInstrumentation(),
      // ... and for the PostgreSQL wire queries underneath (statement text, server address; no parameter values).
      new PgInstrumentation({ requireParentSpan: true }),
    ],
    // Empty lists switch OTel metrics and logs off unless OTEL_METRICS_EXPORTER / OTEL_LOGS_EXPORTER ask for them.
    ...(config.metricsExporterRequested ? {} : { metricReaders: [] }),
    ...(config.logsExporterRequested ? {} : { logRecordProcessors: [] }),
  });
  instance.start();
  sdk = instance;
  return true;
}

export function isTracingStarted(): boolean {
  return sdk !== null;
}

/** Exports every span ended so far (the batch processor otherwise waits up to OTEL_BSP_SCHEDULE_DELAY). */
export async function flushTracing(): Promise<void> {
  if (!sdk) return;
  const provider = trace.getTracerProvider() as { getDelegate?: () => unknown };
  const delegate = (provider.getDelegate?.() ?? provider) as { forceFlush?: () => Promise<void> };
  await delegate.forceFlush?.();
}

/** Flushes and stops the SDK; spans started afterwards are dropped. */
export async function shutdownTracing(): Promise<void> {
  const current = sdk;
  sdk = null;
  await current?.shutdown();
}

/**
 * A Fastify onRequest hook that gives the HTTP server span its route: `GET /api/v1/task/:id`
 * instead of `GET`, and `http.route` (Fastify knows the route, the http instrumentation does not).
 * Null when tracing is off.
 */
export function routeNamingHook(): ((req: { routeOptions?: { url?: string } }) => void) | null {
  if (!sdk) return null;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { getRPCMetadata, RPCType } = require('@opentelemetry/core') as typeof import('@opentelemetry/core');
  return (req) => {
    const metadata = getRPCMetadata(context.active());
    const route = req.routeOptions?.url;
    if (metadata?.type === RPCType.HTTP && route) metadata.route = route;
  };
}
