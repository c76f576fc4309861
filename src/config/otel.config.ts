import { validateEnv } from './env.validation';

/**
 * Read before Nest starts (tracing must be set up before the instrumented modules load), so it
 * is a plain function rather than a registerAs namespace. The standard OTEL_* variables
 * (endpoint, headers, protocol, sampler, batch sizes) are read by the OpenTelemetry SDK itself;
 * the common ones are validated in env.validation.ts.
 */
export function readOtelConfig() {
  const env = validateEnv(process.env);
  return {
    enabled: env.ENABLE_OPENTELEMETRY ?? false,
    serviceName: env.OTEL_SERVICE_NAME || 'asa-backend',
    /**
     * OTel metrics and logs are off unless asked for with the standard variables: metrics go
     * to Prometheus through /metrics, and Jaeger (the stack's trace backend) accepts traces only.
     */
    metricsExporterRequested: Boolean(env.OTEL_METRICS_EXPORTER),
    logsExporterRequested: Boolean(env.OTEL_LOGS_EXPORTER),
  };
}
