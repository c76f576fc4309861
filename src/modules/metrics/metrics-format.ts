import { Metric, OpenMetricsContentType, PrometheusContentType, Registry } from 'prom-client';
import type { MetricsRegistry } from './metrics-registry.provider';

export type ExpositionFormat = 'openmetrics' | 'text';

/**
 * Picks the exposition format from an Accept header. Prometheus (2.5+) asks for OpenMetrics
 * first, and only OpenMetrics carries exemplars; curl, browsers and older scrapers get the
 * classic text format (0.0.4).
 */
export function negotiateFormat(accept: string | undefined): ExpositionFormat {
  let openMetricsQ = 0;
  let textQ = 0;
  for (const part of (accept ?? '').split(',')) {
    const [type, ...params] = part.trim().toLowerCase().split(';').map((s) => s.trim());
    const qParam = params.find((p) => p.startsWith('q='));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    if (!Number.isFinite(q)) continue;
    if (type === 'application/openmetrics-text') openMetricsQ = Math.max(openMetricsQ, q);
    else if (type === 'text/plain') textQ = Math.max(textQ, q);
  }
  return openMetricsQ > 0 && openMetricsQ >= textQ ? 'openmetrics' : 'text';
}

/**
 * Renders the registry in the requested format without changing it. The registry's own
 * content type is OpenMetrics (exemplars need it), so each request renders through a
 * throwaway registry of the wanted type. For OpenMetrics the metrics are wrapped
 * (`Object.create`): prom-client renames counters (drops `_total`) while rendering
 * OpenMetrics, and the rename must not leak into the next text-format scrape.
 */
export async function renderMetrics(registry: MetricsRegistry, format: ExpositionFormat): Promise<{ contentType: string; body: string }> {
  if (format === 'openmetrics') {
    const view = new Registry<OpenMetricsContentType>();
    view.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    for (const metric of metricsOf(registry)) view.registerMetric(Object.create(metric) as Metric);
    return { contentType: Registry.OPENMETRICS_CONTENT_TYPE, body: await view.metrics() };
  }
  const view = new Registry<PrometheusContentType>();
  view.setContentType(Registry.PROMETHEUS_CONTENT_TYPE);
  for (const metric of metricsOf(registry)) view.registerMetric(metric);
  return { contentType: Registry.PROMETHEUS_CONTENT_TYPE, body: await view.metrics() };
}

/** getMetricsAsArray() returns the registered metric instances; the typings only describe their common fields. */
function metricsOf(registry: MetricsRegistry): Metric[] {
  return registry.getMetricsAsArray() as unknown as Metric[];
}
