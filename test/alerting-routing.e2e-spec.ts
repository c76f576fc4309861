/**
 * An alert end to end, on the real binaries: a usage sink of the running service drops records
 * -> /metrics -> Prometheus (the shipped rules, unchanged) fires UsageSinkDroppingRecords ->
 * Alertmanager (the shipped alertmanager.yml) routes the page to Slack and to the on-call
 * mailbox -> a local Slack-compatible webhook and a local SMTP server receive it.
 *
 * The only changes to alertmanager.yml are the delivery targets and the first-notification wait:
 * the secrets folder points to temporary files (the Slack URL of the local receiver), the SMTP
 * smarthost to the local server (plain SMTP, so no STARTTLS), and group_wait 30s to 1s.
 */
import { randomUUID } from 'node:crypto';
import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { ReceivedMail, SlackMessage, SlackReceiver, SmtpReceiver, startSlackReceiver, startSmtpReceiver } from './support/alert-receivers';
import { createTestApp, listenOnLoopback, TestApp } from './support/create-app';
import { freePort, PrometheusHandle, scrapeConfig, startPrometheus } from './support/prometheus-server';

const ROOT = resolve(__dirname, '..');
const ALERTMANAGER_BIN = process.env.ALERTMANAGER_BIN || '/usr/bin/prometheus-alertmanager';

/** Replaces `from` (which must occur) with `to`. */
function swap(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`alertmanager.yml no longer contains "${from}": update this test`);
  return text.split(from).join(to);
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs: number, log: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${log()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('alert routing: Prometheus rule -> Alertmanager -> Slack and email', () => {
  let dir: string;
  let slack: SlackReceiver;
  let smtp: SmtpReceiver;
  let alertmanager: ChildProcess;
  let amOutput = '';
  let prom: PrometheusHandle;
  let t: TestApp;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'asa-alerting-'));
    slack = await startSlackReceiver();
    smtp = await startSmtpReceiver();

    // Secrets, as a deployer would create them (never committed).
    mkdirSync(join(dir, 'secrets'));
    writeFileSync(join(dir, 'secrets', 'slack_webhook_url'), `${slack.url}/services/T000/B000/test\n`);
    writeFileSync(join(dir, 'secrets', 'smtp_password'), 'not-a-real-password\n');
    let config = readFileSync(join(ROOT, 'alertmanager.yml'), 'utf8');
    config = swap(config, '/etc/alertmanager/secrets/', `${dir}/secrets/`);
    config = swap(config, 'smtp_smarthost: smtp.example.com:587', `smtp_smarthost: ${smtp.host}:${smtp.port}`);
    config = swap(config, 'smtp_require_tls: true', 'smtp_require_tls: false');
    config = swap(config, 'group_wait: 30s', 'group_wait: 1s');
    writeFileSync(join(dir, 'alertmanager.yml'), config);

    const amPort = await freePort();
    alertmanager = spawn(
      ALERTMANAGER_BIN,
      [
        `--config.file=${join(dir, 'alertmanager.yml')}`,
        `--storage.path=${join(dir, 'am-data')}`,
        `--web.listen-address=127.0.0.1:${amPort}`,
        '--cluster.listen-address=', // no gossip: a single local instance
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    alertmanager.stdout!.on('data', (d: Buffer) => (amOutput += d.toString()));
    alertmanager.stderr!.on('data', (d: Buffer) => (amOutput += d.toString()));
    const deadline = Date.now() + 20_000;
    while (!(await fetch(`http://127.0.0.1:${amPort}/-/ready`).then((r) => r.ok, () => false))) {
      if (alertmanager.exitCode !== null || Date.now() > deadline) throw new Error(`alertmanager did not start:\n${amOutput}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    // A third-party usage sink (loaded like any plugin) whose warehouse is down, with the drop policy.
    const plugin = join(dir, 'flaky-sink.mjs');
    writeFileSync(
      plugin,
      `export function createUsageSink() {
        return { name: 'warehouse', policy: { onFailure: 'drop' }, async write() { throw new Error('warehouse unreachable'); } };
      }\n`,
    );
    t = await createTestApp({ env: { USAGE_SINK_PLUGINS: plugin } });
    const { host } = new URL(await listenOnLoopback(t.app));
    prom = await startPrometheus(
      scrapeConfig({
        target: host,
        ruleFiles: [join(ROOT, 'config/prometheus/rules/asa-llm.rules.yml')],
        alertmanager: `127.0.0.1:${amPort}`,
      }),
    );
  });

  afterAll(async () => {
    await prom?.stop();
    if (alertmanager && alertmanager.exitCode === null) {
      const exited = new Promise((r) => alertmanager.once('exit', r));
      alertmanager.kill('SIGTERM');
      const killer = setTimeout(() => alertmanager.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killer);
    }
    await t?.close();
    await slack?.close();
    await smtp?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a page reaches the Slack channel and the on-call mailbox, and nobody else', async () => {
    const log = () => `alertmanager:\n${amOutput}\nprometheus:\n${prom.log()}`;
    // Let Prometheus see the sink at 0 first, then lose a record.
    const scraped = async () => Number((await prom.query('count_over_time(up{job="asa-backend"}[5m])'))[0]?.value[1] ?? 0);
    const t0 = Date.now();
    while ((await scraped()) < 2) {
      if (Date.now() - t0 > 20_000) throw new Error(`no scrapes\n${log()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const recorder = t.app.get(UsageRecorder);
    await recorder.record({
      id: randomUUID(), createdAtMs: Date.now(), taskId: 'task-1', userId: null, traceId: null, provider: 'openai', operation: 'chat',
      requestedModel: 'gpt-4o', responseModel: 'gpt-4o', inputTokens: 10, cachedInputTokens: 0, cacheWriteTokens: 0, outputTokens: 5,
      reasoningTokens: 0, totalTokens: 15, costNanos: 75_000, unpriced: false, priceSource: 'test', latencyMs: 200,
      timeToFirstTokenMs: null, streamed: false, status: 'success', errorType: null, estimated: false,
    });
    await recorder.flush();
    expect(recorder.stats().find((s) => s.sink === 'warehouse')).toMatchObject({ dropped: 1 });

    const message = await until<SlackMessage>(
      'the Slack message',
      () => slack.messages.find((m) => JSON.stringify(m.body).includes('UsageSinkDroppingRecords')),
      45_000,
      log,
    );
    expect(message.path).toBe('/services/T000/B000/test');
    expect(message.body.channel).toBe('#llm-costs');
    const attachment = message.body.attachments?.[0];
    expect(attachment?.title).toBe('[FIRING:1] UsageSinkDroppingRecords');
    expect(attachment?.text).toContain('*usage sink warehouse dropped 1 records*');
    expect(attachment?.text).toContain('The warehouse usage sink gave up on usage records in the last 10 minutes.');

    const mail = await until<ReceivedMail>('the email', () => smtp.mails.find((m) => m.data.includes('UsageSinkDroppingRecords')), 45_000, log);
    expect(mail.from).toBe('asa-alerts@example.com');
    expect(mail.to).toEqual(['oncall@example.com']);
    expect(mail.data).toMatch(/^Subject: .*UsageSinkDroppingRecords/m);
    expect(mail.data).toContain('warehouse');

    // Spend alerts go to finance; this page did not.
    expect(smtp.mails.some((m) => m.to.includes('llm-budget-owners@example.com'))).toBe(false);
  });
});
