import { Provider } from '@nestjs/common';
import { collectDefaultMetrics, OpenMetricsContentType, Registry } from 'prom-client';
import { METRICS_REGISTRY } from './metrics.constants';

/** This app's registry. Its native format is OpenMetrics, the only one that carries exemplars. */
export type MetricsRegistry = Registry<OpenMetricsContentType>;

/**
 * A fresh registry per application instance: metrics are registered once per app, and two apps in
 * one process (tests) never share counters. /metrics still serves the classic text format on request.
 */
export const metricsRegistryProvider: Provider = {
  provide: METRICS_REGISTRY,
  useFactory: (): MetricsRegistry => {
    const registry = new Registry<OpenMetricsContentType>();
    registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    collectDefaultMetrics({ register: registry });
    return registry;
  },
};
