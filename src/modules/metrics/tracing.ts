import { readOtelConfig } from '../../config/otel.config';

/**
 * Starts the OpenTelemetry SDK when ENABLE_OPENTELEMETRY=true. Must run before NestFactory.create.
 * (Filled in by the telemetry work; with tracing disabled nothing is loaded.)
 */
export function startTracing(): void {
  if (!readOtelConfig().enabled) return;
}
