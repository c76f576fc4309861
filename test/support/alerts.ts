import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RaiseAlertInput } from '../../src/modules/quotas/alerts/alert.service';

/** A quota alert as quota evaluation raises it: rule alice-monthly at 80 % of $50 in November 2026. */
export function quotaAlert(overrides: Partial<RaiseAlertInput['alert']> = {}, dedupKey?: string): RaiseAlertInput {
  const alert: RaiseAlertInput['alert'] = {
    ruleId: 'alice-monthly',
    scope: { user_id: 'alice' },
    thresholdPercent: 80,
    percent: 82.4,
    spendUsd: '41.200000000',
    limitUsd: '50.000000000',
    spendTokens: null,
    limitTokens: null,
    window: { kind: 'month', start: '2026-11-01T00:00:00.000Z', end: '2026-12-01T00:00:00.000Z' },
    action: 'block',
    ...overrides,
  };
  return {
    dedupKey: dedupKey ?? `${alert.ruleId}|${JSON.stringify(alert.scope)}|${alert.thresholdPercent}|${alert.window.start}`,
    alert,
    notify: null,
    now: new Date('2026-11-20T10:00:00.000Z'),
  };
}

/**
 * Writes a notifier plugin (`relay`) that POSTs each alert's id and state to `url` and fails
 * the attempt on a non-2xx answer, for tests that run the service in another process (a plugin
 * file is the only way to hand it a notifier). Returns the plugin's path for ALERT_NOTIFIER_PLUGINS.
 */
export function writeRelayNotifierPlugin(dir: string, url: string): string {
  const plugin = join(dir, 'relay-notifier.mjs');
  writeFileSync(
    plugin,
    `export function createAlertNotifier() {
      return { name: 'relay', async send(alert) {
        const res = await fetch(${JSON.stringify(url)}, { method: 'POST', body: JSON.stringify({ id: alert.id, state: alert.state }) });
        if (!res.ok) throw Object.assign(new Error('relay answered HTTP ' + res.status), { httpStatus: res.status });
      } };
    }\n`,
  );
  return plugin;
}
