/**
 * Quota alerts to Debian's real prometheus-alertmanager: found through its API with the right
 * labels, kept alive by re-sends while firing, and resolved (endsAt) when the window ends.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AlertService } from '../src/modules/quotas/alerts/alert.service';
import { quotaAlert } from './support/alerts';
import { createTestApp, TestApp } from './support/create-app';
import { eventually } from './support/notifier-receivers';
import { freePort } from './support/prometheus-server';

const ALERTMANAGER_BIN = process.env.ALERTMANAGER_BIN || '/usr/bin/prometheus-alertmanager';

interface AmAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  updatedAt: string;
  status: { state: string };
}

describe('alertmanager notifier against the real Alertmanager', () => {
  let dir: string;
  let am: ChildProcess;
  let amUrl: string;
  let amOutput = '';
  let t: TestApp;
  let alerts: AlertService;

  const amAlerts = async (): Promise<AmAlert[]> => {
    const res = await fetch(`${amUrl}/api/v2/alerts?filter=${encodeURIComponent('alertname="LlmQuotaThreshold"')}`);
    return (await res.json()) as AmAlert[];
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'asa-am-'));
    // Alerts are only stored and shown here; no receiver is needed to read them through the API.
    writeFileSync(join(dir, 'alertmanager.yml'), 'route:\n  receiver: nowhere\nreceivers:\n  - name: nowhere\n');
    const port = await freePort();
    am = spawn(
      ALERTMANAGER_BIN,
      [`--config.file=${join(dir, 'alertmanager.yml')}`, `--storage.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address=', '--log.level=warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    am.stdout!.on('data', (d: Buffer) => (amOutput += d.toString()));
    am.stderr!.on('data', (d: Buffer) => (amOutput += d.toString()));
    amUrl = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 20_000;
    while (!(await fetch(`${amUrl}/-/ready`).then((r) => r.ok, () => false))) {
      if (am.exitCode !== null || Date.now() > deadline) throw new Error(`alertmanager did not start:\n${amOutput}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    t = await createTestApp({ env: { ALERTMANAGER_URL: amUrl, ALERT_DELIVERY_BACKOFF_MS: '50', ALERT_DELIVERY_TIMEOUT_MS: '5000' } });
    alerts = t.app.get(AlertService);
  });

  afterAll(async () => {
    await t?.close();
    if (am && am.exitCode === null) {
      const exited = new Promise((r) => am.once('exit', r));
      am.kill('SIGTERM');
      const killer = setTimeout(() => am.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killer);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('fires with severity by threshold, is re-sent while firing, and resolves when the window ends', async () => {
    expect(alerts.notifierNames()).toEqual(['alertmanager']);
    // Windows that contain the real now and end in a few seconds: Alertmanager sees them active,
    // and the resolution's endsAt (when the window ended) is in its past.
    const start = new Date(Date.now() - 60_000);
    const end = new Date(Date.now() + 8_000);
    const window = { kind: 'day' as const, start: start.toISOString(), end: end.toISOString() };
    const critical = await alerts.raise({
      ...quotaAlert({ ruleId: 'gpt4-daily', scope: { model: 'gpt-4' }, thresholdPercent: 100, percent: 103.5, spendUsd: '207.000000000', limitUsd: '200.000000000', window, action: 'block' }),
      now: new Date(),
    });
    const warning = await alerts.raise({ ...quotaAlert({ window, action: 'alert' }), now: new Date() });
    expect([critical.created, warning.created]).toEqual([true, true]);

    const found = await eventually('both alerts in Alertmanager', async () => {
      const list = await amAlerts();
      return list.length === 2 ? list : undefined;
    });
    const byRule = Object.fromEntries(found.map((a) => [a.labels.rule, a]));
    expect(byRule['gpt4-daily'].labels).toEqual({ alertname: 'LlmQuotaThreshold', severity: 'critical', rule: 'gpt4-daily', model: 'gpt-4', threshold: '100' });
    expect(byRule['gpt4-daily'].annotations).toMatchObject({ spend_usd: '207.000000000', limit_usd: '200.000000000', percent: '103.5', window_end: end.toISOString() });
    expect(byRule['gpt4-daily'].annotations.summary).toBe('Quota gpt4-daily passed 100 % (model=gpt-4): $207.00 of $200.00');
    expect(byRule['gpt4-daily'].status.state).toBe('active');
    expect(byRule['alice-monthly'].labels).toEqual({ alertname: 'LlmQuotaThreshold', severity: 'warning', rule: 'alice-monthly', user_id: 'alice', threshold: '80' });

    // Re-sent on each sweep once the first delivery is done (Alertmanager forgets silent alerts).
    await eventually('the first dispatches to finish', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/api/v1/alerts' });
      return (res.json() as { alerts: { delivery_pending: boolean }[] }).alerts.every((a) => !a.delivery_pending) ? true : undefined;
    });
    const before = byRule['gpt4-daily'].updatedAt;
    await new Promise((r) => setTimeout(r, 20));
    expect(await alerts.sweep(new Date())).toEqual({ resolved: 0, resent: 2 });
    await eventually('the re-send to reach Alertmanager', async () =>
      (await amAlerts()).find((a) => a.labels.rule === 'gpt4-daily' && a.updatedAt !== before) ? true : undefined,
    );

    // The window ends: resolved with endsAt, so Alertmanager no longer lists them as active.
    await new Promise((r) => setTimeout(r, Math.max(0, end.getTime() - Date.now() + 10)));
    expect(await alerts.sweep(new Date())).toEqual({ resolved: 2, resent: 0 });
    await eventually('the alerts to resolve in Alertmanager', async () => ((await amAlerts()).length === 0 ? true : undefined));
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/alerts?state=resolved' });
    const stored = res.json() as { alerts: { deliveries: { notifier: string; state: string; result: string }[] }[] };
    expect(stored.alerts).toHaveLength(2);
    for (const a of stored.alerts) {
      expect(a.deliveries.map((d) => [d.notifier, d.state, d.result])).toEqual([['alertmanager', 'firing', 'ok'], ['alertmanager', 'resolved', 'ok']]);
    }
  });
});
