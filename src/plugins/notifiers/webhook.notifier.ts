import { Inject, Injectable } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { createHmac } from 'node:crypto';
import { alertsConfig, AlertsConfig } from '../../config/alerts.config';
import type { AlertNotifier, CostAlert } from '../sdk';
import { postOrThrow } from './http-post';

/** Header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`. */
export const WEBHOOK_SIGNATURE_HEADER = 'x-asa-signature';

/** The documented JSON body (README, "Alerts and notifiers"): snake_case, amounts as exact decimal strings. */
export function webhookBody(alert: CostAlert): Record<string, unknown> {
  return {
    type: alert.kind === 'test' ? 'cost_alert.test' : `cost_alert.${alert.state}`,
    id: alert.id,
    kind: alert.kind,
    state: alert.state,
    rule_id: alert.ruleId,
    scope: alert.scope,
    threshold_percent: alert.thresholdPercent,
    percent: alert.percent,
    spend_usd: alert.spendUsd,
    limit_usd: alert.limitUsd,
    spend_tokens: alert.spendTokens,
    limit_tokens: alert.limitTokens,
    window: alert.window,
    action: alert.action,
    fired_at: alert.firedAt,
    resolved_at: alert.resolvedAt,
  };
}

/**
 * The signature header value. The timestamp is part of the signed content, so a receiver that
 * rejects old timestamps also rejects a replayed body.
 */
export function signWebhook(secret: string, rawBody: string, timestampS: number): string {
  const v1 = createHmac('sha256', secret).update(`${timestampS}.${rawBody}`).digest('hex');
  return `t=${timestampS},v1=${v1}`;
}

/** POSTs a signed JSON body to ALERT_WEBHOOK_URL. */
@Injectable()
export class WebhookNotifier implements AlertNotifier {
  static isConfigured(config: AlertsConfig): boolean {
    return config.webhook.url !== null && config.webhook.secret !== null;
  }

  readonly name = 'webhook';

  constructor(@Inject(alertsConfig.KEY) private readonly config: ConfigType<typeof alertsConfig>) {}

  async send(alert: CostAlert): Promise<void> {
    const raw = JSON.stringify(webhookBody(alert));
    await postOrThrow('The webhook receiver', this.config.webhook.url!, {
      body: raw,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'asa-backend-alerts',
        [WEBHOOK_SIGNATURE_HEADER]: signWebhook(this.config.webhook.secret!, raw, Math.floor(Date.now() / 1000)),
      },
      timeoutMs: this.config.delivery.timeoutMs,
    });
  }
}
