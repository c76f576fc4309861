import { Inject, Injectable } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { alertsConfig, AlertsConfig } from '../../config/alerts.config';
import type { AlertNotifier, CostAlert } from '../sdk';
import { facts, headline } from './alert-text';
import { postOrThrow } from './http-post';

/** The Block Kit message for one alert: a header, the figures as fields, and a plain-text fallback. */
export function slackMessage(alert: CostAlert): Record<string, unknown> {
  const icon = alert.kind === 'test' ? ':white_check_mark:' : alert.state === 'resolved' ? ':large_green_circle:' : alert.thresholdPercent >= 100 ? ':red_circle:' : ':warning:';
  const title = headline(alert);
  const fields = alert.kind === 'test' ? [] : facts(alert).map(([label, value]) => ({ type: 'mrkdwn', text: `*${label}*\n${escapeMrkdwn(value)}` }));
  const blocks: Record<string, unknown>[] = [{ type: 'header', text: { type: 'plain_text', text: `${title}`.slice(0, 150), emoji: true } }];
  // A section holds at most 10 fields.
  for (let i = 0; i < fields.length; i += 10) blocks.push({ type: 'section', fields: fields.slice(i, i + 10) });
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `${icon} asa-backend cost alert \`${alert.id}\`` }] });
  return { text: title, blocks };
}

/** Slack's mrkdwn treats &, < and > as markup. */
function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Posts alerts to a Slack incoming webhook (SLACK_WEBHOOK_URL or SLACK_WEBHOOK_URL_FILE). */
@Injectable()
export class SlackNotifier implements AlertNotifier {
  static isConfigured(config: AlertsConfig): boolean {
    return config.slack.webhookUrl !== null;
  }

  readonly name = 'slack';

  constructor(@Inject(alertsConfig.KEY) private readonly config: ConfigType<typeof alertsConfig>) {}

  async send(alert: CostAlert): Promise<void> {
    await postOrThrow('Slack', this.config.slack.webhookUrl!, {
      body: JSON.stringify(slackMessage(alert)),
      headers: { 'content-type': 'application/json' },
      timeoutMs: this.config.delivery.timeoutMs,
    });
  }
}
