/**
 * The observability stack's files, checked without Docker: the compose file's structure, ports and
 * mounts (every mounted file exists), and that Prometheus, Alertmanager and Grafana provisioning
 * point at each other as the compose file names them. (The dashboard's PromQL runs against a real
 * Prometheus in prometheus-scrape.e2e-spec.ts, and each is parsed by promtool here; the rules and
 * alertmanager.yml are checked by promtool and amtool in alerting-config.e2e-spec.ts.)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';

const ROOT = resolve(__dirname, '..');
const PROMTOOL = process.env.PROMTOOL_BIN || '/usr/bin/promtool';
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const yamlFile = (path: string): any => parse(readFileSync(join(ROOT, path), 'utf8'));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Service = { image: string; ports?: string[]; volumes?: string[]; command?: string[]; environment?: Record<string, string>; extra_hosts?: string[] };

describe('docker-compose.observability.yml', () => {
  const compose = yamlFile('docker-compose.observability.yml') as { services: Record<string, Service>; volumes: Record<string, unknown> };
  const s = compose.services;

  it('runs Jaeger, Prometheus, Alertmanager and Grafana from pinned images', () => {
    expect(Object.keys(s).sort()).toEqual(['alertmanager', 'grafana', 'jaeger', 'prometheus']);
    for (const svc of Object.values(s)) expect(svc.image).toMatch(/^[\w./-]+:v?\d+\.\d+\.\d+$/);
  });

  it('publishes the documented ports', () => {
    expect(s.jaeger.ports).toEqual(expect.arrayContaining(['16686:16686', '4317:4317', '4318:4318']));
    expect(s.prometheus.ports).toEqual(['9090:9090']);
    expect(s.alertmanager.ports).toEqual(['9093:9093']);
    expect(s.grafana.ports).toEqual(['3000:3000']);
  });

  it('mounts only files that exist (secrets excepted: created by the deployer, never committed)', () => {
    for (const [name, svc] of Object.entries(s)) {
      for (const volume of svc.volumes ?? []) {
        const [source] = volume.split(':');
        if (!source.startsWith('./')) {
          expect(compose.volumes, `${name}: named volume ${source}`).toHaveProperty(source);
          continue;
        }
        if (source === './config/alertmanager/secrets') continue;
        expect(existsSync(join(ROOT, source)), `${name} mounts ${source}`).toBe(true);
      }
    }
    expect(s.alertmanager.volumes).toContain('./alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro');
    expect(s.alertmanager.command).toContain('--config.file=/etc/alertmanager/alertmanager.yml');
  });

  it('lets Prometheus reach the service on the host, keeps exemplars, and loads the rules', () => {
    expect(s.prometheus.extra_hosts).toContain('host.docker.internal:host-gateway');
    expect(s.prometheus.command).toContain('--enable-feature=exemplar-storage');
    expect(s.prometheus.command).toContain('--config.file=/etc/prometheus/prometheus.yml');
    expect(s.prometheus.volumes).toContain('./config/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
    expect(s.prometheus.volumes).toContain('./config/prometheus/rules:/etc/prometheus/rules:ro');
  });

  it('starts Grafana with admin/admin and the provisioning folders', () => {
    expect(s.grafana.environment).toMatchObject({ GF_SECURITY_ADMIN_USER: 'admin', GF_SECURITY_ADMIN_PASSWORD: 'admin' });
    expect(s.grafana.volumes).toContain('./config/grafana/provisioning:/etc/grafana/provisioning:ro');
    expect(s.grafana.volumes).toContain('./config/grafana/dashboards:/var/lib/grafana/dashboards:ro');
    const home = s.grafana.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    expect(existsSync(join(ROOT, home.replace('/var/lib/grafana/dashboards', 'config/grafana/dashboards')))).toBe(true);
  });
});

describe('config/prometheus/prometheus.yml', () => {
  const prom = yamlFile('config/prometheus/prometheus.yml');

  it('scrapes the service on port 8000 through host.docker.internal (documented for Windows and macOS)', () => {
    const job = prom.scrape_configs.find((j: { job_name: string }) => j.job_name === 'asa-backend');
    expect(job.metrics_path).toBe('/metrics');
    expect(job.static_configs[0].targets).toEqual(['host.docker.internal:8000']);
    expect(readFileSync(join(ROOT, 'config/prometheus/prometheus.yml'), 'utf8')).toMatch(/Windows, macOS/);
  });

  it('sends alerts to the compose Alertmanager and reads the mounted rules', () => {
    expect(prom.alerting.alertmanagers[0].static_configs[0].targets).toEqual(['alertmanager:9093']);
    expect(prom.rule_files).toEqual(['/etc/prometheus/rules/*.rules.yml']);
    expect(statSync(join(ROOT, 'config/prometheus/rules/asa-llm.rules.yml')).isFile()).toBe(true);
  });
});

describe('Grafana provisioning', () => {
  const ds = yamlFile('config/grafana/provisioning/datasources/datasources.yml').datasources as {
    name: string; uid: string; type: string; url: string; jsonData?: { exemplarTraceIdDestinations?: { name: string; datasourceUid: string }[] };
  }[];
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'config/grafana/dashboards/asa-llm-overview.json'), 'utf8')) as {
    uid: string; title: string;
    panels: {
      id: number; title: string; description?: string; datasource: { uid: string }; targets: { expr: string; datasource: { uid: string } }[];
      gridPos: { x: number; y: number; w: number; h: number }; fieldConfig?: { defaults: { unit?: string; min?: number; max?: number } };
    }[];
  };

  it('has the Prometheus datasource at http://prometheus:9090 and Jaeger, with exemplars linked to Jaeger traces', () => {
    const prom = ds.find((d) => d.type === 'prometheus')!;
    const jaeger = ds.find((d) => d.type === 'jaeger')!;
    expect(prom.url).toBe('http://prometheus:9090');
    expect(jaeger.url).toBe('http://jaeger:16686');
    expect(prom.jsonData?.exemplarTraceIdDestinations).toEqual([{ name: 'trace_id', datasourceUid: jaeger.uid }]);
  });

  it('loads dashboards from the folder the compose file mounts', () => {
    const providers = yamlFile('config/grafana/provisioning/dashboards/dashboards.yml').providers;
    expect(providers[0].options.path).toBe('/var/lib/grafana/dashboards');
  });

  it("holds the seed's panels and cost per successful task, on the provisioned Prometheus datasource", () => {
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    // Each seed query is a panel's query, or the whole of one scaled to the panel's unit (USD per second x 3600).
    for (const seed of [
      'sum(rate(llm_cost_usd_total[1h]))',
      'sum by (model) (llm_tokens_total)',
      'histogram_quantile(0.95, rate(llm_latency_seconds_bucket[5m]))',
      'rate(task_success_total{status="success"}[5m])',
      'rate(llm_requests_total[5m])',
      'sum(llm_cost_usd_total)',
    ]) {
      expect(exprs.some((e) => e === seed || e.startsWith(`${seed} * `)), seed).toBe(true);
    }
    expect(dashboard.panels.map((p) => p.title)).toEqual(
      expect.arrayContaining(['LLM cost over time (USD per hour)', 'Token usage by model', 'LLM latency p95', 'Task success rate', 'Cost per successful task (1h)']),
    );
    const promUid = ds.find((d) => d.type === 'prometheus')!.uid;
    for (const p of dashboard.panels) {
      expect(p.datasource.uid, p.title).toBe(promUid);
      for (const t of p.targets) expect(t.datasource.uid, p.title).toBe(promUid);
    }
  });

  it('shows the task success rate in percent, leaving cancelled tasks out as the API does', () => {
    const panels = dashboard.panels.filter((p) => /task success rate/i.test(p.title));
    expect(panels.length).toBeGreaterThanOrEqual(1);
    for (const p of panels) {
      expect(p.fieldConfig?.defaults, p.title).toMatchObject({ unit: 'percent', min: 0, max: 100 });
      expect(p.targets).toHaveLength(1);
      expect(p.targets[0].expr, p.title).toBe(
        '100 * sum(increase(task_success_total{status="success"}[1h])) / sum(increase(task_success_total{status!="cancelled"}[1h]))',
      );
    }
  });

  it('shows cost over time in USD per hour, and every panel says its unit', () => {
    const cost = dashboard.panels.find((p) => p.title === 'LLM cost over time (USD per hour)')!;
    expect(cost.fieldConfig?.defaults.unit).toBe('currencyUSD');
    expect(cost.targets.map((t) => t.expr)).toEqual(['sum(rate(llm_cost_usd_total[1h])) * 3600']);
    for (const p of dashboard.panels) {
      expect(p.fieldConfig?.defaults.unit, p.title).toMatch(/\S/);
      expect(p.description, p.title).toMatch(/\S/);
      // A per-second rate of money shown as USD would read as a total: money panels say per hour or are totals.
      if (p.fieldConfig?.defaults.unit === 'currencyUSD') {
        for (const t of p.targets) expect(/^sum\(llm_cost_usd_total\)$|\* 3600$|\/ sum\(increase/.test(t.expr), `${p.title}: ${t.expr}`).toBe(true);
      }
    }
  });

  it('has panel queries that promtool accepts as PromQL', () => {
    const dir = mkdtempSync(join(tmpdir(), 'asa-grafana-promql-'));
    try {
      const rules = dashboard.panels.flatMap((p) => p.targets.map((t, i) => ({ record: `grafana:panel_${p.id}_${i}`, expr: t.expr })));
      const file = join(dir, 'panels.rules.yml');
      writeFileSync(file, stringify({ groups: [{ name: 'grafana-panels', rules }] }));
      const out = execFileSync(PROMTOOL, ['check', 'rules', file], { encoding: 'utf8' });
      expect(out).toMatch(new RegExp(`SUCCESS: ${rules.length} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lays the panels out on the 24-column grid without overlaps', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const { title, gridPos: g } of dashboard.panels) {
      expect(g.x + g.w, title).toBeLessThanOrEqual(24);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          expect(cells.has(`${x},${y}`), `${title} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
      }
    }
  });
});
