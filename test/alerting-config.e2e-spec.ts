/**
 * The shipped Prometheus and Alertmanager configuration, checked by the real tools (Debian's
 * `prometheus` and `prometheus-alertmanager` packages): promtool check config / check rules /
 * test rules (unit tests of the alert rules) and amtool check-config / config routes test.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '..');
const PROMTOOL = process.env.PROMTOOL_BIN || '/usr/bin/promtool';
const AMTOOL = process.env.AMTOOL_BIN || '/usr/bin/amtool';

/** Runs a tool; returns its output, or throws with the output when it exits non-zero. */
function run(bin: string, args: string[]): string {
  try {
    return execFileSync(bin, args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${bin} ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}${e.message}`);
  }
}

describe('Prometheus configuration (promtool)', () => {
  it('check config, run from the repository as the README says, also checks every rule file (and not the unit-test file)', () => {
    // rule_files is relative to the config file's folder, which is what both promtool and the
    // container (config and rules mounted side by side under /etc/prometheus) resolve it against.
    const out = run(PROMTOOL, ['check', 'config', 'config/prometheus/prometheus.yml']);
    expect(out).toContain('SUCCESS: 1 rule files found');
    expect(out).toContain('Checking config/prometheus/rules/asa-llm.rules.yml');
    expect(out).toContain('SUCCESS: 12 rules found');
    expect(out).not.toContain('rules.test.yml');
  });

  it('check config fails on a broken rule file next to the config: the rules are really checked', () => {
    const dir = mkdtempSync(join(tmpdir(), 'asa-promtool-'));
    try {
      mkdirSync(join(dir, 'rules'));
      copyFileSync(join(ROOT, 'config/prometheus/prometheus.yml'), join(dir, 'prometheus.yml'));
      const rules = readFileSync(join(ROOT, 'config/prometheus/rules/asa-llm.rules.yml'), 'utf8');
      expect(rules).toContain('asa:llm_cost_usd_per_hour:rate1h > 10 and');
      writeFileSync(join(dir, 'rules', 'asa-llm.rules.yml'), rules.replace('asa:llm_cost_usd_per_hour:rate1h > 10 and', 'asa:llm_cost_usd_per_hour:rate1h > > 10 and'));
      expect(() => run(PROMTOOL, ['check', 'config', join(dir, 'prometheus.yml')])).toThrow(/asa-llm\.rules\.yml/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('check rules: the alert and recording rules are valid', () => {
    expect(run(PROMTOOL, ['check', 'rules', 'config/prometheus/rules/asa-llm.rules.yml'])).toContain('SUCCESS: 12 rules found');
  });

  it('test rules: cost burn rate, error rate, latency, sink and availability alerts fire (and stay quiet) as specified', () => {
    expect(run(PROMTOOL, ['test', 'rules', 'config/prometheus/rules/asa-llm.rules.test.yml'])).toContain('SUCCESS');
  });

  it('test rules fails when a rule is wrong (the unit tests can catch a regression)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'asa-promtool-'));
    try {
      const rules = readFileSync(join(ROOT, 'config/prometheus/rules/asa-llm.rules.yml'), 'utf8');
      // A plausible mistake: the burn-rate threshold off by 10x.
      expect(rules).toContain('asa:llm_cost_usd_per_hour:rate1h > 10 and');
      writeFileSync(join(dir, 'asa-llm.rules.yml'), rules.replace('asa:llm_cost_usd_per_hour:rate1h > 10 and', 'asa:llm_cost_usd_per_hour:rate1h > 100 and'));
      copyFileSync(join(ROOT, 'config/prometheus/rules/asa-llm.rules.test.yml'), join(dir, 'asa-llm.rules.test.yml'));
      expect(() => run(PROMTOOL, ['test', 'rules', join(dir, 'asa-llm.rules.test.yml')])).toThrow(/LlmCostBurnRateHigh/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Alertmanager configuration (amtool)', () => {
  it('check-config: alertmanager.yml is valid, with its Slack and email receivers', () => {
    const out = run(AMTOOL, ['check-config', 'alertmanager.yml']);
    expect(out).toContain('SUCCESS');
    expect(out).toContain('3 receivers');
  });

  it('keeps secrets out of the file: the Slack URL and SMTP password are read from files', () => {
    const text = readFileSync(join(ROOT, 'alertmanager.yml'), 'utf8');
    expect(text).toContain('slack_api_url_file: /etc/alertmanager/secrets/slack_webhook_url');
    expect(text).toContain('smtp_auth_password_file: /etc/alertmanager/secrets/smtp_password');
    expect(text).not.toMatch(/hooks\.slack\.com|api_url:\s|auth_password:\s/);
    expect(readFileSync(join(ROOT, 'config/alertmanager/.gitignore'), 'utf8')).toContain('secrets/');
  });

  it.each([
    ['a page (critical)', ['alertname=AsaBackendDown', 'severity=critical'], 'slack-llm,email-oncall'],
    ['a spend warning', ['alertname=LlmCostBurnRateHigh', 'severity=warning'], 'email-finance,slack-llm'],
    ['a runaway spend page', ['alertname=LlmCostBurnRateCritical', 'severity=critical'], 'email-finance,slack-llm,email-oncall'],
    ['a latency warning', ['alertname=LlmLatencyHigh', 'severity=warning', 'model=gpt-4o'], 'slack-llm'],
    ['an unpriced model notice', ['alertname=LlmUnpricedCalls', 'severity=info'], 'slack-llm'],
  ])('routes %s to the right receivers', (_what, labels, receivers) => {
    const out = run(AMTOOL, ['config', 'routes', 'test', '--config.file=alertmanager.yml', ...labels]);
    expect(out.trim()).toBe(receivers);
  });
});
