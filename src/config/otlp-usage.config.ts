import { registerAs } from '@nestjs/config';
import { validateEnv } from './env.validation';

export type OtlpProtocol = 'http/protobuf' | 'http/json' | 'grpc';

/** The OpenTelemetry default export timeout (OTEL_EXPORTER_OTLP_TIMEOUT), in ms. */
const DEFAULT_OTLP_TIMEOUT_MS = 10_000;
/** The OpenTelemetry default metric export interval (OTEL_METRIC_EXPORT_INTERVAL), in ms. */
const DEFAULT_METRIC_EXPORT_INTERVAL_MS = 60_000;

/**
 * Whether the OTLP usage sink is on. Read when AppModule is first loaded (before Nest starts, as
 * ENABLE_OPENTELEMETRY is), because it decides which modules and packages are loaded at all:
 * with OTLP_USAGE_SINK off, neither nestjs-otel nor any OpenTelemetry metrics or logs package is required.
 */
export function isOtlpUsageSinkEnabled(): boolean {
  return validateEnv(process.env).OTLP_USAGE_SINK ?? false;
}

/**
 * Settings of the OTLP usage sink. Endpoints, headers, compression and temporality are read by the
 * OpenTelemetry exporters themselves from the standard variables (validated in env.validation.ts),
 * with the spec's precedence (OTEL_EXPORTER_OTLP_METRICS_ENDPOINT used as is, else
 * OTEL_EXPORTER_OTLP_ENDPOINT + /v1/metrics, ...); what the service itself needs is here.
 */
export const otlpUsageConfig = registerAs('otlpUsage', () => {
  const env = validateEnv(process.env);
  const protocol = (env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf') as OtlpProtocol;
  const timeoutMs = env.OTEL_EXPORTER_OTLP_TIMEOUT ?? DEFAULT_OTLP_TIMEOUT_MS;
  return {
    serviceName: env.OTEL_SERVICE_NAME || 'asa-backend',
    /** OTLP_USAGE_LOGS: one OTLP log record per usage record, besides the metrics. */
    logs: env.OTLP_USAGE_LOGS ?? false,
    metricsProtocol: (env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL as OtlpProtocol | undefined) ?? protocol,
    logsProtocol: (env.OTEL_EXPORTER_OTLP_LOGS_PROTOCOL as OtlpProtocol | undefined) ?? protocol,
    metricsTimeoutMs: env.OTEL_EXPORTER_OTLP_METRICS_TIMEOUT ?? timeoutMs,
    logsTimeoutMs: env.OTEL_EXPORTER_OTLP_LOGS_TIMEOUT ?? timeoutMs,
    /** OTEL_METRIC_EXPORT_INTERVAL: the periodic export, and the longest a usage record waits in the sink's queue. */
    exportIntervalMs: env.OTEL_METRIC_EXPORT_INTERVAL ?? DEFAULT_METRIC_EXPORT_INTERVAL_MS,
  };
});
export type OtlpUsageConfig = ReturnType<typeof otlpUsageConfig>;
