import { DataSource } from 'typeorm';
import { LlmClientFactory } from '../src/modules/llm/llm-client.factory';
import { LlmUsage } from '../src/modules/usage/entities/llm-usage.entity';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { FakeOpenAi } from './fixtures/fake-openai';
import { createTestApp, TestApp } from './support/create-app';
import { TcpProxy } from './support/pipeline';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';

const USER_HI = [{ role: 'user' as const, content: 'hi' }];

/**
 * Budgets and quotas live in the database. Found in a trial: a task's model call made during a
 * 15 s PostgreSQL outage failed at once as `llm_error`, and its failure_detail showed the
 * database's address to the task's owner. Now the call's admission waits for the database and
 * the call goes through once it is back.
 */
describePostgres('LLM call admission during a database outage', () => {
  let db: ScratchDatabase;
  let proxy: TcpProxy;
  let fake: FakeOpenAi;
  let t: TestApp;

  beforeAll(async () => {
    db = await createScratchPostgres();
    proxy = new TcpProxy(Number(new URL(db.url).port || 5432));
    await proxy.start();
    fake = await FakeOpenAi.start({ defaultReply: { content: 'ok', usage: { prompt_tokens: 8, completion_tokens: 2 } } });
    const viaProxy = new URL(db.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    t = await createTestApp({ env: { DATABASE_URL: viaProxy.toString(), OPENAI_BASE_URL: fake.baseUrl, OPENAI_API_KEY: 'sk-test', OPENAI_MAX_RETRIES: '0' } });
    // A block rule, so every call's admission reads and writes the database.
    const rule = { id: 'outage-rule', scope: { user_id: 'u-outage' }, limit_usd: '10', window: 'day', action: 'block' };
    expect((await t.app.inject({ method: 'POST', url: '/api/v1/quotas', payload: rule })).statusCode).toBe(201);
  });
  afterAll(async () => {
    await t?.close();
    await proxy?.stop();
    await fake?.close();
    await db?.drop();
  });

  it('a budgeted task call waits for the database, then is made and recorded once', async () => {
    const llm = t.app.get(LlmClientFactory).forTask('t-outage', { userId: 'u-outage', maxCostUsd: 1 });
    await proxy.stop();
    const call = llm.chat({ model: 'gpt-4o-mini', messages: USER_HI });
    let settled = false;
    void call.then(() => (settled = true), () => (settled = true));
    // While the database is away the call waits: nothing reaches the provider.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(settled).toBe(false);
    expect(fake.chatRequests()).toHaveLength(0);
    await proxy.start();
    const reply = await call;
    expect(reply.choices[0].message.content).toBe('ok');
    expect(fake.chatRequests()).toHaveLength(1);
    await t.app.get(UsageRecorder).flush();
    const rows = await t.app.get(DataSource).getRepository(LlmUsage).find({ where: { taskId: 't-outage' } });
    expect(rows.map((r) => r.status)).toEqual(['success']);
  }, 60_000);

  it('a call no block rule covers goes ahead during the outage, on the rules last read; one a rule covers waits', async () => {
    const free = t.app.get(LlmClientFactory).forUser('u-free');
    await free.chat({ model: 'gpt-4o-mini', messages: USER_HI }); // the rules are read with the database up
    const before = fake.chatRequests().length;
    await proxy.stop();
    let down = true;
    try {
      await new Promise((r) => setTimeout(r, 2_500)); // past the rules' 2 s re-read interval
      const reply = await free.chat({ model: 'gpt-4o-mini', messages: USER_HI });
      expect(reply.choices[0].message.content).toBe('ok');
      expect(fake.chatRequests()).toHaveLength(before + 1);
      let settled = false;
      const covered = t.app.get(LlmClientFactory).forUser('u-outage').chat({ model: 'gpt-4o-mini', messages: USER_HI });
      void covered.then(() => (settled = true), () => (settled = true));
      await new Promise((r) => setTimeout(r, 2_000));
      expect(settled).toBe(false);
      expect(fake.chatRequests()).toHaveLength(before + 1);
      await proxy.start();
      down = false;
      await covered;
    } finally {
      if (down) await proxy.start();
    }
    await t.app.get(UsageRecorder).flush();
    const rows = await t.app.get(DataSource).getRepository(LlmUsage).find({ where: { userId: 'u-free' } });
    expect(rows.map((r) => r.status)).toEqual(['success', 'success']);
  }, 60_000);

  it('a quota evaluation during the outage answers 503 instead of waiting for the queued usage', async () => {
    const free = t.app.get(LlmClientFactory).forUser('u-free');
    await free.chat({ model: 'gpt-4o-mini', messages: USER_HI }); // rules read with the database up
    await t.app.get(UsageRecorder).flush();
    await proxy.stop();
    try {
      await new Promise((r) => setTimeout(r, 2_500));
      await free.chat({ model: 'gpt-4o-mini', messages: USER_HI }); // its record waits in the queue
      // Answered while the database is still down (it comes back only after): no waiting for it.
      const res = await t.app.inject({ method: 'POST', url: '/api/v1/quotas/evaluate' });
      expect(res.statusCode, res.body).toBe(503);
      expect(res.json()).toMatchObject({ code: 'DATABASE_UNAVAILABLE' });
      expect(res.headers['retry-after']).toBeDefined();
    } finally {
      await proxy.start();
    }
  }, 60_000);
});
