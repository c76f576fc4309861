import { Counter, Histogram, OpenMetricsContentType, Registry } from 'prom-client';
import { negotiateFormat, renderMetrics } from './metrics-format';

describe('negotiateFormat', () => {
  it.each([
    [undefined, 'text'],
    ['', 'text'],
    ['*/*', 'text'],
    ['text/plain', 'text'],
    // Prometheus 2.x default scrape header.
    ['application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1', 'openmetrics'],
    ['application/openmetrics-text; version=1.0.0', 'openmetrics'],
    ['text/plain;version=0.0.4;q=0.9, application/openmetrics-text;q=0.5', 'text'],
    ['application/openmetrics-text;q=0', 'text'],
    ['application/openmetrics-text;q=abc', 'text'],
  ] as const)('%j -> %s', (accept, format) => {
    expect(negotiateFormat(accept)).toBe(format);
  });
});

describe('renderMetrics', () => {
  // Exemplar labels are not series labels (the typings assume they are): pass them as a plain record.
  const exemplarLabels: Record<string, string> = { trace_id: '0af7651916cd43dd8448eb211c80319c' };
  const registry = () => {
    const r = new Registry<OpenMetricsContentType>();
    r.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    const c = new Counter({ name: 'jobs_total', help: 'jobs', labelNames: ['kind'], registers: [r], enableExemplars: true });
    c.inc({ labels: { kind: 'a' }, value: 2, exemplarLabels });
    const h = new Histogram({ name: 'wait_seconds', help: 'wait', buckets: [1], registers: [r], enableExemplars: true });
    h.observe({ value: 0.5, exemplarLabels });
    return r;
  };

  it('renders OpenMetrics with exemplars and # EOF', async () => {
    const { contentType, body } = await renderMetrics(registry(), 'openmetrics');
    expect(contentType).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    expect(body).toContain('# TYPE jobs counter');
    expect(body).toMatch(/^jobs_total\{kind="a"\} 2 # \{trace_id="0af7651916cd43dd8448eb211c80319c"\} 2 \d+/m);
    expect(body).toMatch(/^wait_seconds_bucket\{le="1"\} 1 # \{trace_id="0af7651916cd43dd8448eb211c80319c"\} 0\.5 \d+/m);
    expect(body.endsWith('# EOF\n')).toBe(true);
  });

  it('renders the text format without exemplars, and an OpenMetrics render in between changes nothing', async () => {
    const r = registry();
    const before = await renderMetrics(r, 'text');
    await renderMetrics(r, 'openmetrics');
    const after = await renderMetrics(r, 'text');
    expect(after.body).toBe(before.body);
    expect(after.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(after.body).toContain('# TYPE jobs_total counter\njobs_total{kind="a"} 2');
    expect(after.body).not.toContain('trace_id');
  });
});
