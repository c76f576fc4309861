import { Inject, Injectable } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { createTransport, type Transporter } from 'nodemailer';
import { alertsConfig, AlertsConfig } from '../../config/alerts.config';
import type { AlertNotifier, CostAlert } from '../sdk';
import { facts, headline } from './alert-text';

const escapeHtml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

/** Subject, plain-text and HTML parts of one alert email (every value in the HTML escaped). */
export function emailMessage(alert: CostAlert): { subject: string; text: string; html: string } {
  const title = headline(alert);
  const rows = alert.kind === 'test' ? [] : facts(alert);
  const text = [title, '', ...rows.map(([label, value]) => `${label}: ${value}`), '', `Alert id: ${alert.id}`].join('\n');
  const html = [
    '<!doctype html><html><body style="font-family: sans-serif">',
    `<h2>${escapeHtml(title)}</h2>`,
    rows.length > 0
      ? `<table cellpadding="4" style="border-collapse: collapse">${rows
          .map(([label, value]) => `<tr><th align="left">${escapeHtml(label)}</th><td>${escapeHtml(value)}</td></tr>`)
          .join('')}</table>`
      : '',
    `<p style="color: #666">Alert id: ${escapeHtml(alert.id)}</p>`,
    '</body></html>',
  ].join('\n');
  return { subject: `[asa-backend] ${title}`, text, html };
}

/** Sends alerts by SMTP (SMTP_URL, SMTP_PASSWORD_FILE) from ALERT_EMAIL_FROM to ALERT_EMAIL_TO. */
@Injectable()
export class EmailNotifier implements AlertNotifier {
  static isConfigured(config: AlertsConfig): boolean {
    return config.email.smtpUrl !== null && config.email.from !== null && config.email.to.length > 0;
  }

  readonly name = 'email';
  private transporter: Transporter | null = null;

  constructor(@Inject(alertsConfig.KEY) private readonly config: ConfigType<typeof alertsConfig>) {}

  async send(alert: CostAlert): Promise<void> {
    const { subject, text, html } = emailMessage(alert);
    await this.transport().sendMail({ from: this.config.email.from!, to: this.config.email.to, subject, text, html });
  }

  async close(): Promise<void> {
    this.transporter?.close();
  }

  // Built on first use: an unconfigured notifier (never listed) opens nothing.
  private transport(): Transporter {
    if (this.transporter) return this.transporter;
    const url = new URL(this.config.email.smtpUrl!);
    const secure = url.protocol === 'smtps:';
    const timeout = this.config.delivery.timeoutMs;
    this.transporter = createTransport({
      host: url.hostname,
      port: url.port ? Number(url.port) : secure ? 465 : 587,
      secure,
      auth: this.config.email.user && this.config.email.password ? { user: this.config.email.user, pass: this.config.email.password } : undefined,
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: timeout,
    });
    return this.transporter;
  }
}
