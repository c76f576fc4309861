import type { IncomingMessage } from 'node:http';
import { Attributes, context, Context, Link, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import type { Sampler, SamplingResult } from '@opentelemetry/sdk-trace-base';
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
  /* eslint-enable @typescript-eslint/no-require-imports */

  const instance = new NodeSDK({
    serviceName: config.serviceName,
    sampler: dropOrphanDbSpans(envSampler()),
    resource: resourceFromAttributes(serviceVersion() ? { 'service.version': serviceVersion()! } : {}),
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

/**
 * The sampler OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG ask for (the SDK's own reading of them),
 * or the SDK default, parent-based always-on.
 */
function envSampler(): Sampler {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { ParentBasedSampler, AlwaysOnSampler } = require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
  let fromEnv: Sampler | undefined;
  try {
    // Internal to sdk-node (pinned to 0.223.x); without it, OTEL_TRACES_SAMPLER would be ignored once a sampler is passed.
    fromEnv = (require('@opentelemetry/sdk-node/build/src/create-from-env') as { createSamplerFromEnv?: () => Sampler | undefined }).createSamplerFromEnv?.();
  } catch {
    fromEnv = undefined;
  }
  /* eslint-enable @typescript-eslint/no-require-imports */
  return fromEnv ?? new ParentBasedSampler({ root: new AlwaysOnSampler() });
}

/**
 * Drops database spans that have no parent: the task queue polls the database every second and
 * the usage sinks write in the background, which would otherwise make one useless trace each.
 * Queries made while serving a request or running a task keep their spans.
 */
function dropOrphanDbSpans(delegate: Sampler): Sampler {
  return {
    shouldSample(ctx: Context, traceId: string, name: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
      const isDb = attributes['db.system.name'] !== undefined || attributes['db.system'] !== undefined;
      if (isDb && kind === SpanKind.CLIENT && !trace.getSpanContext(ctx)) return { decision: 0 /* SamplingDecision.NOT_RECORD */ };
      return delegate.shouldSample(ctx, traceId, name, kind, attributes, links);
    },
    toString: () => `DropOrphanDbSpans{${delegate.toString()}}`,
  };
}

/** The package version (same relative path from src/ and dist/); undefined if the layout is unusual. */
function serviceVersion(): string | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('../../../package.json') as { version?: string }).version;
  } catch {
    return undefined;
  }
}

export function isTracingStarted(): boolean {
  return sdk !== null;
}

/**
 * Runs housekeeping work (queue polling, heartbeats) with tracing suppressed, so it makes no orphan
 * traces. Without the SDK there is nothing to suppress and `@opentelemetry/core` is not loaded.
 */
export function runUntraced<T>(fn: () => T): T {
  if (!sdk) return fn();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { suppressTracing } = require('@opentelemetry/core') as typeof import('@opentelemetry/core');
  return context.with(suppressTracing(ROOT_CONTEXT), fn);
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
