import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { OpenTelemetryModule } from 'nestjs-otel';
import { otlpUsageConfig } from '../../../config/otlp-usage.config';
import { OtlpUsageTelemetry } from './otlp-usage-telemetry';

/**
 * What the OTLP usage sink depends on: nestjs-otel (its MetricService creates the instruments on
 * the global meter provider) and the OpenTelemetry SDK exporting over OTLP. Imported by
 * UsageModule only when OTLP_USAGE_SINK=true (see `otlpUsageSinkParts`).
 */
@Module({
  // No host or API metrics: the usage sink exports usage, nothing else.
  imports: [ConfigModule.forFeature(otlpUsageConfig), OpenTelemetryModule.forRoot({ metrics: { hostMetrics: false } })],
  providers: [OtlpUsageTelemetry],
  exports: [OtlpUsageTelemetry],
})
export class OtlpUsageSinkModule {}
