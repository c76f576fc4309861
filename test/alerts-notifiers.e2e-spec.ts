/**
 * Cost alerts delivered by the built-in notifiers to real peers: a Slack-compatible webhook and a
 * signed webhook on local HTTP receivers, a real SMTP server (smtp-server, AUTH required, parsed with
 * mailparser), and two third-party plugins: one whose endpoint answers 500, one that never answers.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { AlertService } from '../src/modules/quotas/alerts/alert.service';
import { bearer, writeApiKeysFile } from './support/api-keys';
import { quotaAlert } from './support/alerts';
import { createTestApp, TestApp } from './support/create-app';
import { eventually, HttpReceiver, RealSmtpServer, startHttpReceiver, startSmtpServer } from './support/notifier-receivers';

const SLACK_TOKEN_PATH = '/services/T0SECRET/B0SECRET/xoxSlackPathSecret';
const WEBHOOK_SECRET = 'whsec_test_0123456789abcdef';
const SMTP_PASSWORD = 'smtp-password-never-shown';
const ADMIN = 'admin-key-alerts-0001';
const USER = 'user-key-alerts-0001';

interface DeliveryJson {
  notifier: string;
  state: string;
  attempt: number;
  result: string;
  error: string | null;
  http_status: number | null;
}
interface AlertJson {
  id: string;
  state: string;
  delivery_pending: boolean;
  deliveries: DeliveryJson[];
  [k: string]: unknown;
}

/** Verifies `t=<s>,v1=<hex>` the way the README tells receivers to. */
function verifySignature(header: string, raw: string, secret: string, toleranceS = 300): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=') as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceS) return false;
  const expected = createHmac('sha256', secret).update(`${parts.t}.${raw}`).digest();
  const given = Buffer.from(parts.v1 ?? '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

describe('alert notifiers: Slack, email, webhook and plugins on real peers', () => {
  let dir: string;
  let slack: HttpReceiver;
  let webhook: HttpReceiver;
  let failing: HttpReceiver;
  let smtp: RealSmtpServer;
  let t: TestApp;
  let alerts: AlertService;
  // Everything the service logs while these tests run (Nest's logger writes to stdout and stderr).
  let logged = '';
  const realWrite = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };

  const getAlerts = async (query = '') => {
    const res = await t.app.inject({ method: 'GET', url: `/api/v1/alerts${query}`, headers: bearer(ADMIN) });
    expect(res.statusCode).toBe(200);
    return res.json() as { alerts: AlertJson[]; next_cursor: string | null };
  };

  beforeAll(async () => {
    process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => ((logged += String(chunk)), realWrite.out(chunk, ...rest))) as typeof process.stdout.write;
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => ((logged += String(chunk)), realWrite.err(chunk, ...rest))) as typeof process.stderr.write;
    dir = mkdtempSync(join(tmpdir(), 'asa-notifiers-'));
    slack = await startHttpReceiver();
    webhook = await startHttpReceiver();
    failing = await startHttpReceiver({ status: 500, body: 'internal_error' });
    smtp = await startSmtpServer('asa-alerts', SMTP_PASSWORD);
    writeFileSync(join(dir, 'slack_webhook_url'), `${slack.url}${SLACK_TOKEN_PATH}\n`);
    writeFileSync(join(dir, 'smtp_password'), `${SMTP_PASSWORD}\n`);
    // Third-party notifiers, loaded like any plugin: one whose endpoint fails, one that hangs.
    writeFileSync(
      join(dir, 'failing-notifier.mjs'),
      `export function createAlertNotifier() {
        return { name: 'pager', async send(alert) {
          const res = await fetch(${JSON.stringify(failing.url)} + '/hook', { method: 'POST', body: JSON.stringify({ id: alert.id }) });
          if (!res.ok) throw Object.assign(new Error('pager answered HTTP ' + res.status), { httpStatus: res.status });
        } };
      }\n`,
    );
    writeFileSync(join(dir, 'hanging-notifier.mjs'), `export function createAlertNotifier() { return { name: 'stuck', send: () => new Promise(() => {}) }; }\n`);
    t = await createTestApp({
      env: {
        API_KEYS_FILE: writeApiKeysFile(dir, [{ name: 'ops', key: ADMIN }, { name: 'alice', key: USER, userId: 'alice' }]),
        SLACK_WEBHOOK_URL_FILE: join(dir, 'slack_webhook_url'),
        SMTP_URL: `smtp://asa-alerts@127.0.0.1:${smtp.port}`,
        SMTP_PASSWORD_FILE: join(dir, 'smtp_password'),
        ALERT_EMAIL_FROM: 'asa-alerts@example.com',
        ALERT_EMAIL_TO: 'finance@example.com, oncall@example.com',
        ALERT_WEBHOOK_URL: `${webhook.url}/asa-alerts`,
        ALERT_WEBHOOK_SECRET: WEBHOOK_SECRET,
        ALERT_NOTIFIER_PLUGINS: `${join(dir, 'failing-notifier.mjs')},${join(dir, 'hanging-notifier.mjs')}`,
        ALERT_DELIVERY_MAX_ATTEMPTS: '3',
        ALERT_DELIVERY_BACKOFF_MS: '50',
        ALERT_DELIVERY_TIMEOUT_MS: '700',
      },
    });
    alerts = t.app.get(AlertService);
  });

  afterAll(async () => {
    process.stdout.write = realWrite.out;
    process.stderr.write = realWrite.err;
    await t?.close();
    await Promise.all([slack?.close(), webhook?.close(), failing?.close(), smtp?.close()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('lists only the notifiers whose settings are present, plugins after the built-ins', () => {
    expect(alerts.notifierNames()).toEqual(['slack', 'email', 'webhook', 'pager', 'stuck']);
  });

  it('delivers a firing alert once to each notifier; the failing and the hanging one are retried, stored and counted', async () => {
    const input = quotaAlert({ scope: { user_id: 'alice', model: 'gpt-4o<beta>&co' } });
    const first = await alerts.raise(input);
    expect(first.created).toBe(true);
    expect(await alerts.raise(input)).toEqual({ alertId: first.alertId, created: false });

    const alert = await eventually('the dispatch to finish', async () => {
      const a = (await getAlerts()).alerts.find((x) => x.id === first.alertId);
      return a && !a.delivery_pending ? a : undefined;
    });
    const by = (n: string) => alert.deliveries.filter((d) => d.notifier === n);
    for (const n of ['slack', 'email', 'webhook']) expect(by(n)).toMatchObject([{ state: 'firing', attempt: 1, result: 'ok', error: null }]);
    expect(by('pager')).toMatchObject([1, 2, 3].map((attempt) => ({ state: 'firing', attempt, result: 'failed', http_status: 500 })));
    expect(by('pager')[0].error).toBe('pager answered HTTP 500');
    expect(by('stuck')).toMatchObject([1, 2, 3].map((attempt) => ({ attempt, result: 'failed', http_status: null })));
    expect(by('stuck')[0].error).toMatch(/no answer within 700 ms/);
    expect(failing.requests).toHaveLength(3);
    expect(slack.requests).toHaveLength(1);
    expect(webhook.requests).toHaveLength(1);
    await eventually('the email', () => (smtp.mails.length === 1 ? true : undefined));

    // Slack: Block Kit with the figures, posted to the URL from the file.
    expect(slack.requests[0].path).toBe(SLACK_TOKEN_PATH);
    const msg = JSON.parse(slack.requests[0].raw) as { text: string; blocks: { type: string; text?: { text: string }; fields?: { text: string }[] }[] };
    expect(msg.text).toBe('Quota alice-monthly passed 80 % (user_id=alice, model=gpt-4o<beta>&co): $41.20 of $50.00');
    expect(msg.blocks[0]).toMatchObject({ type: 'header', text: { text: msg.text } });
    const fields = msg.blocks[1].fields!.map((f) => f.text);
    expect(fields).toEqual([
      '*Rule*\nalice-monthly',
      '*Scope*\nuser_id=alice, model=gpt-4o&lt;beta&gt;&amp;co',
      '*Spend*\n$41.20',
      '*Limit*\n$50.00',
      '*Percentage*\n82.4 % (threshold 80 %)',
      '*Window*\nmonth, from 2026-11-01T00:00:00.000Z to 2026-12-01T00:00:00.000Z',
      '*Action*\nblock: calls over the limit are refused',
      '*State*\nfiring since 2026-11-20T10:00:00.000Z',
    ]);

    // Webhook: documented snake_case body, signature verified as a receiver would.
    const hook = webhook.requests[0];
    expect(hook.path).toBe('/asa-alerts');
    expect(verifySignature(String(hook.headers['x-asa-signature']), hook.raw, WEBHOOK_SECRET)).toBe(true);
    expect(verifySignature(String(hook.headers['x-asa-signature']), hook.raw.replace('41.2', '1.2'), WEBHOOK_SECRET)).toBe(false);
    expect(verifySignature(String(hook.headers['x-asa-signature']), hook.raw, 'another-secret-123456')).toBe(false);
    expect(JSON.parse(hook.raw)).toEqual({
      type: 'cost_alert.firing',
      id: first.alertId,
      kind: 'quota_threshold',
      state: 'firing',
      rule_id: 'alice-monthly',
      scope: { user_id: 'alice', model: 'gpt-4o<beta>&co' },
      threshold_percent: 80,
      percent: 82.4,
      spend_usd: '41.200000000',
      limit_usd: '50.000000000',
      spend_tokens: null,
      limit_tokens: null,
      window: { kind: 'month', start: '2026-11-01T00:00:00.000Z', end: '2026-12-01T00:00:00.000Z' },
      action: 'block',
      fired_at: '2026-11-20T10:00:00.000Z',
      resolved_at: null,
    });

    // Email: authenticated, both parts, figures, HTML escaped.
    const mail = smtp.mails[0];
    expect(mail.user).toBe('asa-alerts');
    expect(mail.envelopeFrom).toBe('asa-alerts@example.com');
    expect(mail.envelopeTo).toEqual(['finance@example.com', 'oncall@example.com']);
    expect(mail.parsed.subject).toBe(`[asa-backend] ${msg.text}`);
    expect(mail.parsed.text).toContain('Spend: $41.20\nLimit: $50.00\nPercentage: 82.4 % (threshold 80 %)');
    expect(mail.parsed.text).toContain('Scope: user_id=alice, model=gpt-4o<beta>&co');
    expect(mail.parsed.html).toContain('<tr><th align="left">Spend</th><td>$41.20</td></tr>');
    expect(mail.parsed.html).toContain('model=gpt-4o&lt;beta&gt;&amp;co');
    expect(mail.parsed.html).not.toContain('<beta>');

    // Counted per notifier and result on the service's registry.
    const metrics = (await t.app.inject({ method: 'GET', url: '/metrics', headers: { accept: 'text/plain' } })).body;
    expect(metrics).toMatch(/^alert_notifications_total\{notifier="slack",result="ok"\} 1$/m);
    expect(metrics).toMatch(/^alert_notifications_total\{notifier="pager",result="failed"\} 3$/m);
    expect(metrics).toMatch(/^alert_notifications_total\{notifier="stuck",result="timeout"\} 3$/m);
  });

  it('resolves the alert when its window has ended and tells those that got the firing one', async () => {
    expect(await alerts.sweep(new Date('2026-11-30T23:59:59.999Z'))).toEqual({ resolved: 0, resent: 0 });
    expect(await alerts.sweep(new Date('2026-12-01T00:00:00.000Z'))).toEqual({ resolved: 1, resent: 0 });
    expect(await alerts.sweep(new Date('2026-12-01T00:01:00.000Z'))).toEqual({ resolved: 0, resent: 0 });
    const alert = await eventually('the resolved dispatch', async () => {
      const a = (await getAlerts('?state=resolved&rule=alice-monthly')).alerts[0];
      return a && !a.delivery_pending ? a : undefined;
    });
    expect(alert.resolved_at).toBe('2026-12-01T00:00:00.000Z');
    const resolved = alert.deliveries.filter((d) => d.state === 'resolved');
    expect(resolved.map((d) => [d.notifier, d.result]).sort()).toEqual([['email', 'ok'], ['slack', 'ok'], ['webhook', 'ok']]);
    const slackMsg = JSON.parse(slack.requests[1].raw) as { text: string };
    expect(slackMsg.text).toBe('Resolved: Quota alice-monthly passed 80 % (user_id=alice, model=gpt-4o<beta>&co); its window has ended');
    expect(JSON.parse(webhook.requests[1].raw)).toMatchObject({ type: 'cost_alert.resolved', state: 'resolved', resolved_at: '2026-12-01T00:00:00.000Z' });
    await eventually('the resolved email', () => (smtp.mails.length === 2 ? true : undefined));
    expect(smtp.mails[1].parsed.subject).toMatch(/^\[asa-backend\] Resolved: /);
  });

  it('stores an alert without notifying when notify is empty', async () => {
    const { alertId, created } = await alerts.raise({ ...quotaAlert({ thresholdPercent: 50, percent: 82.4 }), notify: [] });
    expect(created).toBe(true);
    const a = (await getAlerts()).alerts.find((x) => x.id === alertId)!;
    expect(a).toMatchObject({ notify: [], delivery_pending: false, deliveries: [] });
  });

  it('POST /api/v1/alerts/test reports each notifier; admin keys only', async () => {
    expect((await t.app.inject({ method: 'POST', url: '/api/v1/alerts/test', headers: bearer(USER) })).statusCode).toBe(403);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/alerts', headers: bearer(USER) })).statusCode).toBe(403);
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/alerts/test', headers: bearer(ADMIN) });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { alert_id: string; results: { notifier: string; ok: boolean; error: string | null; http_status: number | null; duration_ms: number }[] };
    const result = Object.fromEntries(body.results.map((r) => [r.notifier, r]));
    expect(Object.keys(result)).toEqual(['slack', 'email', 'webhook', 'pager', 'stuck']);
    for (const n of ['slack', 'email', 'webhook']) expect(result[n]).toMatchObject({ ok: true, error: null });
    expect(result.pager).toMatchObject({ ok: false, error: 'pager answered HTTP 500', http_status: 500 });
    expect(result.stuck).toMatchObject({ ok: false, http_status: null });
    expect(result.stuck.error).toMatch(/no answer within 700 ms/);
    expect(JSON.parse(webhook.requests.at(-1)!.raw)).toMatchObject({ type: 'cost_alert.test', kind: 'test' });
    const stored = (await getAlerts('?kind=test')).alerts;
    expect(stored).toHaveLength(1);
    expect(stored[0].deliveries.map((d) => [d.notifier, d.state, d.result])).toEqual(
      expect.arrayContaining([['slack', 'test', 'ok'], ['pager', 'test', 'failed']]),
    );
  });

  it('pages newest first with filters; a bad query is a 400 naming the field', async () => {
    const page1 = await getAlerts('?limit=1&kind=quota_threshold');
    expect(page1.alerts).toHaveLength(1);
    expect(page1.next_cursor).not.toBeNull();
    const page2 = await getAlerts(`?limit=1&kind=quota_threshold&cursor=${page1.next_cursor}`);
    expect(page2.alerts).toHaveLength(1);
    expect(page2.alerts[0].id).not.toBe(page1.alerts[0].id);
    expect(page2.next_cursor).toBeNull();
    const bad = await t.app.inject({ method: 'GET', url: '/api/v1/alerts?state=burning', headers: bearer(ADMIN) });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/state must be one of: firing, resolved/);
  });

  it('never stores, answers or logs a secret', async () => {
    const plain = logged.replace(/\u001b\[[0-9;]*m/g, '');
    expect(plain).toContain('to pager: gave up after 3 attempts'); // the capture works
    const ds = t.app.get(DataSource);
    const rows = JSON.stringify([await ds.query('SELECT * FROM alerts'), await ds.query('SELECT * FROM alert_deliveries')]);
    const api = JSON.stringify(await getAlerts('?limit=100'));
    for (const secret of ['xoxSlackPathSecret', 'T0SECRET', WEBHOOK_SECRET, SMTP_PASSWORD]) {
      expect(rows).not.toContain(secret);
      expect(api).not.toContain(secret);
      expect(plain).not.toContain(secret);
    }
  });
});
