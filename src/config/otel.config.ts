import { validateEnv } from './env.validation';

/**
 * Read before Nest starts (tracing must be set up before the instrumented modules load), so it
 * is a plain function rather than a registerAs namespace. The standard OTEL_* variables
 * (endpoint, headers, protocol, sampler) are read by the OpenTelemetry SDK itself.
 */
export function readOtelConfig() {
  const env = validateEnv(process.env);
  return {
    enabled: env.ENABLE_OPENTELEMETRY ?? false,
    serviceName: process.env.OTEL_SERVICE_NAME || 'asa-backend',
  };
}
