import { TaskMetricsService } from '../src/modules/metrics/task-metrics.service';
import { createTestApp, TestApp } from './support/create-app';

const OPENMETRICS_ACCEPT =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

/** Value of one sample line (`name{labels} value`) in a text or OpenMetrics body; undefined when absent. */
function sample(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1).split(' ')[0]);
}

describe('/metrics', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t?.close());

  it('serves the classic text format by default, with process metrics and every task outcome at 0', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(res.body).toContain('# TYPE process_cpu_user_seconds_total counter');
    expect(res.body).not.toContain('# EOF');
    for (const status of ['success', 'failure', 'cancelled', 'budget_exceeded', 'interrupted']) {
      expect(sample(res.body, `task_success_total{status="${status}"}`)).toBe(0);
    }
  });

  it('serves OpenMetrics to a scraper that asks for it (as Prometheus does), without renaming counters for later text scrapes', async () => {
    const om = await t.app.inject({ method: 'GET', url: '/metrics', headers: { accept: OPENMETRICS_ACCEPT } });
    expect(om.headers['content-type']).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    expect(om.body.endsWith('# EOF\n')).toBe(true);
    expect(om.body).toContain('# TYPE task_success counter');
    expect(om.body).toContain('task_success_total{status="success"} 0');
    // prom-client renames counters while rendering OpenMetrics; the text format must still say _total.
    const text = await t.app.inject({ method: 'GET', url: '/metrics', headers: { accept: 'text/plain' } });
    expect(text.body).toContain('# TYPE task_success_total counter');
    expect(text.body).toContain('# TYPE process_cpu_user_seconds_total counter');
  });

  it('counts finished tasks by status and observes their duration', async () => {
    const tasks = t.app.get(TaskMetricsService);
    tasks.taskFinished('success', 12);
    tasks.taskFinished('success', 3);
    tasks.taskFinished('budget_exceeded', 40);
    const body = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(sample(body, 'task_success_total{status="success"}')).toBe(2);
    expect(sample(body, 'task_success_total{status="budget_exceeded"}')).toBe(1);
    expect(sample(body, 'task_success_total{status="failure"}')).toBe(0);
    expect(sample(body, 'task_duration_seconds_count{status="success"}')).toBe(2);
    expect(sample(body, 'task_duration_seconds_sum{status="success"}')).toBe(15);
    expect(sample(body, 'task_duration_seconds_bucket{le="5",status="success"}')).toBe(1);
    expect(sample(body, 'task_duration_seconds_bucket{le="30",status="success"}')).toBe(2);
  });

  it('gives every application its own registry', async () => {
    const other = await createTestApp();
    try {
      const body = (await other.app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(sample(body, 'task_success_total{status="success"}')).toBe(0);
    } finally {
      await other.close();
    }
  });
});
