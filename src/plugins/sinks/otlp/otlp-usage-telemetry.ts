import { Inject, Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { metrics } from '@opentelemetry/api';
import type { Logger as OtelLogger } from '@opentelemetry/api-logs';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider, LogRecordExporter } from '@opentelemetry/sdk-logs';
import { MeterProvider, PeriodicExportingMetricReader, PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { OtlpProtocol, otlpUsageConfig } from '../../../config/otlp-usage.config';
import { usageConfig } from '../../../config/usage.config';
import { ExportTracker } from './export-tracker';

/** Name of the logger (instrumentation scope) of the usage log records. */
export const USAGE_LOGGER_NAME = 'asa-backend.usage';

export type ExportOutcome = { ok: true } | { ok: false; reason: string } | null;

/**
 * The OpenTelemetry metrics SDK (and, with OTLP_USAGE_LOGS, the logs SDK) behind the OTLP usage
 * sink, exporting over OTLP. Its MeterProvider is registered as the global one because that is
 * where nestjs-otel's MetricService creates its instruments; so this provider must be resolved
 * before any MetricService instrument is created (the sink injects it for that reason).
 */
@Injectable()
export class OtlpUsageTelemetry implements OnApplicationShutdown {
  private readonly logger = new Logger(OtlpUsageTelemetry.name);
  private readonly meterProvider: MeterProvider;
  private readonly reader: PeriodicExportingMetricReader;
  private readonly loggerProvider: LoggerProvider | null = null;
  private readonly metricExports = new ExportTracker();
  private readonly logExports = new ExportTracker();
  private stopped: Promise<void> | null = null;
  /** Emits the usage log records; null unless OTLP_USAGE_LOGS is on. */
  readonly usageLogger: OtelLogger | null = null;

  constructor(
    @Inject(otlpUsageConfig.KEY) readonly config: ConfigType<typeof otlpUsageConfig>,
    @Inject(usageConfig.KEY) usage: ConfigType<typeof usageConfig>,
  ) {
    // As the tracing SDK: OTEL_RESOURCE_ATTRIBUTES honoured, service name and version ours.
    const resource = defaultResource()
      .merge(detectResources({ detectors: [envDetector] }))
      .merge(resourceFromAttributes({ 'service.name': config.serviceName, ...serviceVersion() }));

    const metricExporter = trackedMetricExporter(config.metricsProtocol, config.metricsTimeoutMs, this.metricExports);
    this.reader = new PeriodicExportingMetricReader({
      exporter: metricExporter,
      exportIntervalMillis: config.exportIntervalMs,
      exportTimeoutMillis: Math.min(config.exportIntervalMs, config.metricsTimeoutMs),
    });
    this.meterProvider = new MeterProvider({ resource, readers: [this.reader] });
    if (!metrics.setGlobalMeterProvider(this.meterProvider)) {
      throw new Error(
        'OTLP_USAGE_SINK=true needs the global OpenTelemetry meter provider, but one is already set ' +
          '(OTEL_METRICS_EXPORTER with ENABLE_OPENTELEMETRY=true?): unset OTEL_METRICS_EXPORTER, the usage sink exports metrics itself',
      );
    }

    if (config.logs) {
      const logExporter = trackedLogExporter(config.logsProtocol, config.logsTimeoutMs, this.logExports);
      this.loggerProvider = new LoggerProvider({
        resource,
        processors: [
          // One sink batch is one log export: the queue holds a whole batch, so nothing is dropped for space.
          new BatchLogRecordProcessor({
            exporter: logExporter,
            maxQueueSize: Math.max(usage.batchSize, 512),
            maxExportBatchSize: Math.max(usage.batchSize, 512),
            exportTimeoutMillis: config.logsTimeoutMs,
          }),
        ],
      });
      this.usageLogger = this.loggerProvider.getLogger(USAGE_LOGGER_NAME, serviceVersion()['service.version']);
    }
    this.logger.log(
      `OTLP usage sink: metrics over ${config.metricsProtocol} every ${config.exportIntervalMs} ms` +
        (config.logs ? `, one log record per call over ${config.logsProtocol}` : ''),
    );
  }

  /**
   * Exports what has been recorded so far, now, and says whether the export reached the collector
   * (null: nothing was exported). Metrics and logs are exported side by side; a failure of either fails.
   */
  async flush(withLogs: boolean): Promise<{ metrics: ExportOutcome; logs: ExportOutcome }> {
    const metricMark = this.metricExports.mark();
    const logMark = this.logExports.mark();
    const [m, l] = await Promise.all([
      this.reader.forceFlush().then(() => this.metricExports.outcomeSince(metricMark)),
      withLogs && this.loggerProvider ? this.loggerProvider.forceFlush().then(() => this.logExports.outcomeSince(logMark)) : null,
    ]);
    return { metrics: m, logs: l };
  }

  /** Final export of everything recorded, then the SDK stops; idempotent. */
  shutdown(): Promise<void> {
    this.stopped ??= (async () => {
      const results = await Promise.allSettled([this.meterProvider.shutdown(), this.loggerProvider?.shutdown()]);
      // Released so a later provider (another app in the same process, as in tests) can register.
      metrics.disable();
      for (const r of results) if (r.status === 'rejected') this.logger.warn(`OTLP usage sink shutdown: ${String(r.reason)}`);
    })();
    return this.stopped;
  }

  // A safety net: the sink's close() normally shuts the SDK down after the usage queues are drained.
  async onApplicationShutdown(): Promise<void> {
    await this.shutdown();
  }
}

/* eslint-disable @typescript-eslint/no-require-imports */
// Only the exporter package of the configured protocol is loaded (gRPC pulls in @grpc/grpc-js).
function metricExporterClass(protocol: OtlpProtocol): new (config: { timeoutMillis: number }) => PushMetricExporter {
  switch (protocol) {
    case 'grpc':
      return (require('@opentelemetry/exporter-metrics-otlp-grpc') as typeof import('@opentelemetry/exporter-metrics-otlp-grpc')).OTLPMetricExporter;
    case 'http/json':
      return (require('@opentelemetry/exporter-metrics-otlp-http') as typeof import('@opentelemetry/exporter-metrics-otlp-http')).OTLPMetricExporter;
    default:
      return (require('@opentelemetry/exporter-metrics-otlp-proto') as typeof import('@opentelemetry/exporter-metrics-otlp-proto')).OTLPMetricExporter;
  }
}

function logExporterClass(protocol: OtlpProtocol): new (config: { timeoutMillis: number }) => LogRecordExporter {
  switch (protocol) {
    case 'grpc':
      return (require('@opentelemetry/exporter-logs-otlp-grpc') as typeof import('@opentelemetry/exporter-logs-otlp-grpc')).OTLPLogExporter;
    case 'http/json':
      return (require('@opentelemetry/exporter-logs-otlp-http') as typeof import('@opentelemetry/exporter-logs-otlp-http')).OTLPLogExporter;
    default:
      return (require('@opentelemetry/exporter-logs-otlp-proto') as typeof import('@opentelemetry/exporter-logs-otlp-proto')).OTLPLogExporter;
  }
}
/* eslint-enable @typescript-eslint/no-require-imports */

/** The OTLP metric exporter (endpoint, headers, compression, temporality from the standard variables), its exports tracked. */
function trackedMetricExporter(protocol: OtlpProtocol, timeoutMillis: number, tracker: ExportTracker): PushMetricExporter {
  const exporter = new (metricExporterClass(protocol))({ timeoutMillis });
  return {
    export: tracker.track(exporter.export.bind(exporter)),
    forceFlush: () => exporter.forceFlush(),
    shutdown: () => exporter.shutdown(),
    selectAggregationTemporality: exporter.selectAggregationTemporality?.bind(exporter),
    selectAggregation: exporter.selectAggregation?.bind(exporter),
  };
}

function trackedLogExporter(protocol: OtlpProtocol, timeoutMillis: number, tracker: ExportTracker): LogRecordExporter {
  const exporter = new (logExporterClass(protocol))({ timeoutMillis });
  return {
    export: tracker.track(exporter.export.bind(exporter)),
    forceFlush: () => exporter.forceFlush(),
    shutdown: () => exporter.shutdown(),
  };
}

/** `service.version` from package.json (same relative path from src/ and dist/), or nothing. */
function serviceVersion(): { 'service.version'?: string } {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const version = (require('../../../../package.json') as { version?: string }).version;
    return version ? { 'service.version': version } : {};
  } catch {
    return {};
  }
}
