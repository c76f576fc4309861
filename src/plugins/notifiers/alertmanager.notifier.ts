import { Inject, Injectable } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { alertsConfig, AlertsConfig } from '../../config/alerts.config';
import type { AlertNotifier, CostAlert } from '../sdk';
import { formatPercent, headline, limitText, scopeText, spendText, windowText } from './alert-text';
import { postOrThrow } from './http-post';

export const ALERTMANAGER_ALERTNAME = 'LlmQuotaThreshold';

/** One alert in Alertmanager's v2 API shape (`POST /api/v2/alerts` takes an array of these). */
export function alertmanagerAlert(alert: CostAlert, now: Date): Record<string, unknown> {
  const labels: Record<string, string> = {
    alertname: ALERTMANAGER_ALERTNAME,
    severity: alert.kind === 'test' ? 'info' : alert.thresholdPercent >= 100 ? 'critical' : 'warning',
    rule: alert.ruleId,
    threshold: String(alert.thresholdPercent),
  };
  for (const [k, v] of Object.entries(alert.scope)) if (v !== undefined) labels[k] = v;
  // A test must not look like (nor group with) a real quota alert.
  if (alert.kind === 'test') labels.test = 'true';
  const annotations: Record<string, string> = {
    summary: headline(alert),
    description: `Rule ${alert.ruleId} (${scopeText(alert.scope)}): ${spendText(alert)} of ${limitText(alert)} (${formatPercent(alert.percent)}) in the ${windowText(alert.window)} window; action ${alert.action}.`,
    percent: String(alert.percent),
  };
  if (alert.window.start) annotations.window_start = alert.window.start;
  if (alert.spendUsd !== null) annotations.spend_usd = alert.spendUsd;
  if (alert.limitUsd !== null) annotations.limit_usd = alert.limitUsd;
  if (alert.spendTokens !== null) annotations.spend_tokens = String(alert.spendTokens);
  if (alert.limitTokens !== null) annotations.limit_tokens = String(alert.limitTokens);
  if (alert.window.end) annotations.window_end = alert.window.end;
  const body: Record<string, unknown> = { labels, annotations, startsAt: alert.firedAt };
  if (alert.state === 'resolved') body.endsAt = alert.resolvedAt ?? now.toISOString();
  // A test is a one-off: let it expire on its own instead of lingering until resolve_timeout.
  else if (alert.kind === 'test') body.endsAt = new Date(now.getTime() + 5 * 60_000).toISOString();
  return body;
}

/**
 * Sends alerts to Alertmanager (ALERTMANAGER_URL). Alertmanager resolves an alert it stops hearing
 * about after its resolve_timeout, so firing alerts are re-sent on every evaluation.
 */
@Injectable()
export class AlertmanagerNotifier implements AlertNotifier {
  static isConfigured(config: AlertsConfig): boolean {
    return config.alertmanager.url !== null;
  }

  readonly name = 'alertmanager';
  readonly resendWhileFiring = true;

  constructor(@Inject(alertsConfig.KEY) private readonly config: ConfigType<typeof alertsConfig>) {}

  async send(alert: CostAlert): Promise<void> {
    const url = new URL('api/v2/alerts', this.config.alertmanager.url!.replace(/\/?$/, '/')).toString();
    await postOrThrow('Alertmanager', url, {
      body: JSON.stringify([alertmanagerAlert(alert, new Date())]),
      headers: { 'content-type': 'application/json' },
      timeoutMs: this.config.delivery.timeoutMs,
    });
  }
}
