import type { ModuleMetadata, Type } from '@nestjs/common';
import { isOtlpUsageSinkEnabled } from '../../config/otlp-usage.config';
import type { UsageSink } from '../sdk';

/**
 * The OTLP usage sink's class and module when OTLP_USAGE_SINK=true, nothing otherwise, for
 * UsageModule.forRoot. Imported here on demand, not at the top, so that with the sink off
 * nestjs-otel and the OpenTelemetry metrics and logs packages are not even loaded.
 */
export async function otlpUsageSinkParts(): Promise<{ sinks: Type<UsageSink>[]; imports: NonNullable<ModuleMetadata['imports']> }> {
  if (!isOtlpUsageSinkEnabled()) return { sinks: [], imports: [] };
  const [{ OtlpUsageSink }, { OtlpUsageSinkModule }] = await Promise.all([
    import('./otlp/otlp-usage.sink'),
    import('./otlp/otlp-usage-sink.module'),
  ]);
  return { sinks: [OtlpUsageSink], imports: [OtlpUsageSinkModule] };
}
