import { registerAs } from '@nestjs/config';
import { readConfigFile, StartConfigError } from '../common/start-config-error';
import { validateEnv } from './env.validation';

/** An alerting setting the deployer must fix; one line naming the variable (and its file), never a secret. */
export class AlertSettingError extends StartConfigError {}

/** Reads a one-line secret file; the error names the variable and the file, never the content. */
function readSecretFile(variable: string, path: string): string {
  const where = `${variable}=${JSON.stringify(path)}`;
  const value = readConfigFile(path, (problem) => new AlertSettingError(`${where}: ${problem}`)).trim();
  if (!value) throw new AlertSettingError(`${where}: the file is empty`);
  return value;
}

function slackUrlFromFile(path: string): string {
  const url = readSecretFile('SLACK_WEBHOOK_URL_FILE', path);
  if (!/^https?:\/\/\S+$/.test(url)) {
    throw new AlertSettingError(`SLACK_WEBHOOK_URL_FILE=${JSON.stringify(path)}: the file must hold one http(s) URL (the Slack incoming-webhook URL)`);
  }
  return url;
}

const list = (value: string | undefined) =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

export const alertsConfig = registerAs('alerts', () => {
  const env = validateEnv(process.env);
  const backoffMs = env.ALERT_DELIVERY_BACKOFF_MS ?? 2_000;
  const smtpUser = env.SMTP_URL ? decodeURIComponent(new URL(env.SMTP_URL).username) : '';
  if (env.SMTP_PASSWORD_FILE && !smtpUser) {
    throw new AlertSettingError('SMTP_PASSWORD_FILE is set but SMTP_URL names no user (smtp://user@host:port)');
  }
  return {
    /** Module paths of third-party notifiers, comma separated (see README, "Alerts and notifiers"). */
    notifierPlugins: list(env.ALERT_NOTIFIER_PLUGINS),
    delivery: {
      /** Attempts per notifier and alert state, the first included. */
      maxAttempts: env.ALERT_DELIVERY_MAX_ATTEMPTS ?? 5,
      /** Wait before the 2nd attempt; doubles for each further one, up to backoffMaxMs. */
      backoffMs,
      backoffMaxMs: Math.max(backoffMs, env.ALERT_DELIVERY_BACKOFF_MAX_MS ?? 60_000),
      /** One attempt that takes longer counts as failed (the notifier's work may go on unseen). */
      timeoutMs: env.ALERT_DELIVERY_TIMEOUT_MS ?? 10_000,
    },
    slack: {
      webhookUrl: env.SLACK_WEBHOOK_URL ?? (env.SLACK_WEBHOOK_URL_FILE ? slackUrlFromFile(env.SLACK_WEBHOOK_URL_FILE) : null),
    },
    email: {
      /** smtp://host:port without credentials; the user comes from it, the password from SMTP_PASSWORD_FILE. */
      smtpUrl: env.SMTP_URL ?? null,
      user: smtpUser || null,
      password: env.SMTP_PASSWORD_FILE ? readSecretFile('SMTP_PASSWORD_FILE', env.SMTP_PASSWORD_FILE) : null,
      from: env.ALERT_EMAIL_FROM ?? null,
      to: list(env.ALERT_EMAIL_TO),
    },
    alertmanager: {
      url: env.ALERTMANAGER_URL ?? null,
    },
    webhook: {
      url: env.ALERT_WEBHOOK_URL ?? null,
      secret: env.ALERT_WEBHOOK_SECRET ?? null,
    },
  };
});
export type AlertsConfig = ReturnType<typeof alertsConfig>;
