import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, IncomingHttpHeaders, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LlmClientFactory } from '../src/modules/llm/llm-client.factory';
import { LlmBudgetExceededException } from '../src/modules/llm/llm.exceptions';
import { QuotaEvaluationService } from '../src/modules/quotas/quota-evaluation.service';
import { FakeOpenAi } from './fixtures/fake-openai';
import { createTestApp, TestApp } from './support/create-app';
import { until } from './support/tasks';

const SECRET = 'quota-test-secret';
const PARAMS = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }], max_tokens: 1000 };

interface Received {
  raw: string;
  headers: IncomingHttpHeaders;
  body: { rule_id: string; state: string; threshold_percent: number; percent: number; spend_usd: string; limit_usd: string; scope: object; window: { kind: string; start?: string | null; end?: string | null } };
}

/** A local webhook receiver that keeps the raw body (to check the signature) and the headers. */
async function startWebhookReceiver(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      received.push({ raw, headers: req.headers, body: JSON.parse(raw) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/asa`,
    received,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

function verifySignature(r: Received): boolean {
  const header = String(r.headers['x-asa-signature'] ?? '');
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!m) return false;
  return createHmac('sha256', SECRET).update(`${m[1]}.${r.raw}`).digest('hex') === m[2];
}

/**
 * Threshold alerts from quota evaluation and from a refusal, delivered through the real webhook
 * notifier to a local receiver: each threshold once, across evaluations and across a restart.
 */
describe('quota alerts', () => {
  let dir: string;
  let fake: FakeOpenAi;
  let hook: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let t: TestApp | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'asa-quota-alerts-'));
    // gpt-4o-mini, 1000 input + 1000 output tokens: 1000 × 0.15 + 1000 × 0.60 = 750 USD/M = 0.00075 USD a call.
    fake = await FakeOpenAi.start({ defaultReply: { content: 'ok', usage: { prompt_tokens: 1000, completion_tokens: 1000 } } });
    hook = await startWebhookReceiver();
    writeFileSync(
      join(dir, 'quotas.json'),
      JSON.stringify({
        rules: [
          { id: 'al-daily', scope: { user_id: 'u-al' }, limit_usd: '0.001', window: 'day', action: 'alert', notify: ['webhook'] },
          { id: 'bl-daily', scope: { user_id: 'u-bl' }, limit_usd: '0.0001', window: 'day', action: 'block', notify: ['webhook'] },
          { id: 'bl-task', scope: { task_id: 'task-big' }, limit_usd: '0.0001', window: 'task', action: 'block', notify: ['webhook'] },
        ],
      }),
    );
  });
  afterAll(async () => {
    await t?.close();
    await hook?.close();
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = () =>
    createTestApp({
      env: {
        DATABASE_URL: `sqlite:${join(dir, 'asa.db')}`, // kept across the restart
        QUOTAS_FILE: join(dir, 'quotas.json'),
        ALERT_WEBHOOK_URL: hook.url,
        ALERT_WEBHOOK_SECRET: SECRET,
        OPENAI_BASE_URL: fake.baseUrl,
        OPENAI_API_KEY: 'sk-test',
        OPENAI_MAX_RETRIES: '0',
      },
    });
  const evaluate = async () => {
    const res = await t!.app.inject({ method: 'POST', url: '/api/v1/quotas/evaluate' });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as { fired: { rule_id: string; threshold: number; notified: boolean }[] };
  };
  const forRule = (id: string) => hook.received.filter((r) => r.body.rule_id === id);

  it('each threshold alerts once: across two evaluations, thresholds passed together, and a restart', async () => {
    t = await start();
    const llm = t.app.get(LlmClientFactory).forUser('u-al');
    await llm.chat(PARAMS); // 75 %
    expect((await evaluate()).fired).toEqual([expect.objectContaining({ rule_id: 'al-daily', threshold: 50, notified: true })]);
    await until(() => forRule('al-daily').length === 1, 'the 50 % alert at the webhook');
    const first = forRule('al-daily')[0];
    expect(verifySignature(first)).toBe(true);
    expect(first.body).toMatchObject({ state: 'firing', threshold_percent: 50, percent: 75, spend_usd: '0.000750000', limit_usd: '0.001000000', scope: { user_id: 'u-al' }, window: { kind: 'day' } });
    expect((await evaluate()).fired).toEqual([]);

    await llm.chat(PARAMS); // 150 %: 80 and 100 passed together, one notification naming 100
    const fired = (await evaluate()).fired;
    expect(fired).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ threshold: 100, notified: true }),
        expect.objectContaining({ threshold: 80, notified: false }),
      ]),
    );
    expect(fired).toHaveLength(2);
    await until(() => forRule('al-daily').length === 2, 'the 100 % alert at the webhook');
    expect(forRule('al-daily')[1].body).toMatchObject({ threshold_percent: 100, percent: 150 });
    expect((await evaluate()).fired).toEqual([]);

    await t.close();
    t = await start();
    expect((await evaluate()).fired).toEqual([]);
    // The stored alerts say what was sent: one delivery each for 50 and 100 %, none for 80 %.
    type Stored = { threshold_percent: number; delivery_pending: boolean; deliveries: { notifier: string; state: string; result: string }[] };
    const stored = async () => (await t!.app.inject({ method: 'GET', url: '/api/v1/alerts?rule=al-daily' })).json().alerts as Stored[];
    await until(async () => (await stored()).every((a) => !a.delivery_pending), 'alert deliveries to finish');
    const byThreshold = Object.fromEntries((await stored()).map((a) => [a.threshold_percent, a.deliveries.map((d) => `${d.notifier}:${d.state}:${d.result}`)]));
    expect(byThreshold).toEqual({ 50: ['webhook:firing:ok'], 80: [], 100: ['webhook:firing:ok'] });
    expect(forRule('al-daily')).toHaveLength(2);

    // The next day the window has rolled over: the alerts resolve, and the receiver is told.
    const tomorrow = new Date(Date.parse(forRule('al-daily')[0].body.window.end as string) + 60_000);
    const rolled = await t.app.get(QuotaEvaluationService).evaluate(tomorrow);
    expect(rolled.fired).toEqual([]);
    expect(rolled.resolved).toBe(3);
    await until(() => forRule('al-daily').length === 4, 'the resolved notifications');
    expect(forRule('al-daily').slice(2).map((r) => [r.body.state, r.body.threshold_percent]).sort()).toEqual([['resolved', 100], ['resolved', 50]]);
  });

  it('a refused call fires the rule\'s 100 % alert at once, without an evaluation', async () => {
    t ??= await start();
    const err = await t.app.get(LlmClientFactory).forUser('u-bl').chat(PARAMS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmBudgetExceededException);
    await until(() => forRule('bl-daily').length === 1, 'the limit alert of the block rule');
    expect(forRule('bl-daily')[0].body).toMatchObject({ state: 'firing', threshold_percent: 100, scope: { user_id: 'u-bl' } });
    expect(verifySignature(forRule('bl-daily')[0])).toBe(true);
    // A second refusal does not repeat it.
    await t.app.get(LlmClientFactory).forUser('u-bl').chat(PARAMS).catch(() => undefined);
    expect((await evaluate()).fired.filter((f) => f.rule_id === 'bl-daily' && f.notified)).toEqual([]);
  });

  it("a task window's alert names no start or end of its own (the task's whole life)", async () => {
    t ??= await start();
    const err = await t.app.get(LlmClientFactory).forTask('task-big').chat(PARAMS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmBudgetExceededException);
    await until(() => forRule('bl-task').length === 1, 'the limit alert of the task rule');
    expect(forRule('bl-task')[0].body).toMatchObject({ threshold_percent: 100, percent: 0, scope: { task_id: 'task-big' }, window: { kind: 'task', start: null, end: null } });
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/alerts?rule=bl-task' });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.body).not.toContain('1970');
    expect(res.json()).toMatchObject({ alerts: [{ rule_id: 'bl-task', window: { kind: 'task', start: null, end: null } }] });
  });

  it('the scheduler evaluates every QUOTA_EVALUATION_INTERVAL_S without being asked', async () => {
    await t?.close();
    t = await createTestApp({
      env: {
        DATABASE_URL: `sqlite:${join(dir, 'asa.db')}`,
        QUOTAS_FILE: join(dir, 'quotas.json'),
        QUOTA_EVALUATION_INTERVAL_S: '1',
        ALERT_WEBHOOK_URL: hook.url,
        ALERT_WEBHOOK_SECRET: SECRET,
        OPENAI_BASE_URL: fake.baseUrl,
        OPENAI_API_KEY: 'sk-test',
        OPENAI_MAX_RETRIES: '0',
      },
    });
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/v1/quotas',
      payload: { id: 'scheduled', scope: { user_id: 'u-sched' }, limit_usd: '0.0005', window: 'day', notify: ['webhook'] },
    });
    expect(created.statusCode, created.body).toBe(201);
    await t.app.get(LlmClientFactory).forUser('u-sched').chat(PARAMS); // 150 %
    await until(() => forRule('scheduled').length === 1, 'the scheduled evaluation to alert', 20_000);
    expect(forRule('scheduled')[0].body).toMatchObject({ threshold_percent: 100, percent: 150 });
  });
});
