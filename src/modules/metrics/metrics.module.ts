import { Global, Module } from '@nestjs/common';
import { PrometheusModule } from '@willsoto/nestjs-prometheus';
import { MetricsController } from './metrics.controller';
import { metricsRegistryProvider } from './metrics-registry.provider';
import { METRICS_REGISTRY } from './metrics.constants';
import { TaskMetricsService } from './task-metrics.service';
import { TracingLifecycle } from './tracing-lifecycle.service';
import { UsagePipelineMetrics } from './usage-pipeline-metrics.service';

/**
 * Prometheus metrics on a dedicated registry, served at /metrics. Global so the task runner and
 * the Prometheus usage sink can inject the metric services without importing this module.
 */
@Global()
@Module({
  imports: [
    // Default metrics off here: the library would put them on prom-client's global registry;
    // metricsRegistryProvider collects them on this app's registry instead.
    PrometheusModule.register({ controller: MetricsController, path: '/metrics', defaultMetrics: { enabled: false } }),
  ],
  providers: [metricsRegistryProvider, TaskMetricsService, UsagePipelineMetrics, TracingLifecycle],
  exports: [METRICS_REGISTRY, TaskMetricsService],
})
export class MetricsModule {}
