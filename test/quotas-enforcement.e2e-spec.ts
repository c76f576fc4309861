import { DataSource } from 'typeorm';
import { nanosToUsdExact } from '../src/common/money';
import { LlmClientFactory } from '../src/modules/llm/llm-client.factory';
import { LlmBudgetExceededException, LlmUnpricedModelException } from '../src/modules/llm/llm.exceptions';
import { PricingService } from '../src/modules/llm/pricing/pricing.service';
import { TokenEstimator } from '../src/modules/llm/token-estimator';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { QuotaCounterStore } from '../src/modules/quotas/quota-counter.store';
import { parseQuotaRule } from '../src/modules/quotas/quota-rule';
import { windowAt } from '../src/modules/quotas/quota-window';
import { FakeOpenAi } from './fixtures/fake-openai';
import { createTestApp, TestApp } from './support/create-app';
import { usageRecord } from './support/usage-records';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';

const MODEL = 'gpt-4o-mini';
const PARAMS = { model: MODEL, messages: [{ role: 'user' as const, content: 'count to three' }], max_tokens: 100 };

async function recordedSpend(t: TestApp, userId: string): Promise<{ nanos: bigint; rows: number }> {
  await t.app.get(UsageRecorder).flush();
  const [row] = await t.app
    .get(DataSource)
    .query(`SELECT CAST(SUM(cost_nanos) AS TEXT) AS nanos, COUNT(*) AS n FROM llm_usage WHERE user_id = '${userId}'`);
  return { nanos: BigInt(row.nanos ?? 0), rows: Number(row.n) };
}

async function metricValue(t: TestApp, name: string, labels: string): Promise<number> {
  const text = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

/**
 * Hard quota enforcement, on SQLite and on PostgreSQL: 50 calls at once through the real LlmClientFactory and the
 * openai SDK against the fake provider (each call held 300 ms there), against a block rule
 * with room for a few calls.
 */
const enforcementSuite = (database: 'sqlite' | 'postgres') => () => {
  let fake: FakeOpenAi;
  let t: TestApp;
  let worstNanos: bigint;
  let pg: ScratchDatabase | undefined;

  beforeAll(async () => {
    if (database === 'postgres') pg = await createScratchPostgres();
    // The provider reports what the call could have cost at most: real cost = reserved worst case.
    fake = await FakeOpenAi.start({ defaultReply: { content: 'one two three', delayMs: 300, usage: { prompt_tokens: 0, completion_tokens: 100 } } });
    t = await createTestApp({
      env: { OPENAI_BASE_URL: fake.baseUrl, OPENAI_API_KEY: 'sk-test', OPENAI_MAX_RETRIES: '0', ...(pg ? { DATABASE_URL: pg.url } : {}) },
    });
    // Admission reserves the prompt's upper bound (its UTF-8 bytes), never a tokenizer's count.
    const prompt = t.app.get(TokenEstimator).chatPromptBound(PARAMS);
    worstNanos = BigInt(t.app.get(PricingService).maxCostNanos(MODEL, prompt, 100, { provider: 'openai' })!);
    fake.setDefault({ content: 'one two three', delayMs: 300, usage: { prompt_tokens: prompt, completion_tokens: 100 } });
  });
  afterAll(async () => {
    await t?.close();
    await fake?.close();
    await pg?.drop();
  });
  beforeEach(() => fake.reset());

  const createRule = async (rule: Record<string, unknown>) => {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/quotas', payload: rule });
    expect(res.statusCode, res.body).toBe(201);
  };

  it('50 parallel calls never take the spend past the limit, and refused calls never reach the provider', async () => {
    // Room for 5 calls and a half.
    const limitNanos = worstNanos * 5n + worstNanos / 2n;
    await createRule({ id: 'burst', scope: { user_id: 'u-burst' }, limit_usd: nanosToUsdExact(limitNanos), window: 'day', action: 'block' });

    const llm = t.app.get(LlmClientFactory).forUser('u-burst');
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => llm.chat(PARAMS)));
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);

    expect(ok).toBe(5);
    expect(refused).toHaveLength(45);
    for (const err of refused) {
      expect(err).toBeInstanceOf(LlmBudgetExceededException);
      expect((err as LlmBudgetExceededException).code).toBe('LLM_BUDGET_EXCEEDED');
      expect((err as Error).message).toMatch(/quota rule "burst" \(user_id=u-burst, day window from .*\): spent [\d.]+ USD of its [\d.]+ USD limit/);
    }
    expect(fake.chatRequests()).toHaveLength(ok);
    const spend = await recordedSpend(t, 'u-burst');
    expect(spend.rows).toBe(ok);
    expect(spend.nanos).toBeLessThanOrEqual(limitNanos);
    expect(spend.nanos).toBe(worstNanos * 5n);
    expect(await metricValue(t, 'llm_blocked_requests_total', 'rule="burst"')).toBe(45);

    // The counter has settled: one more call is still refused, by the recorded spend alone.
    const again = await llm.chat(PARAMS).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(LlmBudgetExceededException);
    expect((again as Error).message).toContain(`spent ${nanosToUsdExact(worstNanos * 5n)} USD of its ${nanosToUsdExact(limitNanos)} USD limit`);
    expect(fake.chatRequests()).toHaveLength(ok);
  });

  it('a transaction rolled back on the main connection (a refused usage batch) undoes neither a rule nor a reservation', async () => {
    // What the usage sink does for each batch: a transaction on the main DataSource, held open here, then rolled back.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const batch = t.app
      .get(DataSource)
      .transaction(async (m) => {
        await m.query('SELECT COUNT(*) FROM llm_usage');
        await gate;
        throw new Error('batch refused');
      })
      .catch((err: Error) => err.message);
    await createRule({ id: 'rollback', scope: { user_id: 'u-rollback' }, limit_usd: nanosToUsdExact(worstNanos * 10n), window: 'day', action: 'block' });
    await t.app.get(LlmClientFactory).forUser('u-rollback').chat(PARAMS);
    release();
    expect(await batch).toBe('batch refused');
    const status = (await t.app.inject({ method: 'GET', url: '/api/v1/quotas/status' })).json();
    expect(JSON.stringify(status)).toContain('"rollback"');
    const [counter] = await t.app
      .get(DataSource)
      .query(`SELECT CAST(SUM(spent_nanos) AS TEXT) AS spent FROM quota_counters WHERE rule_id = 'rollback'`);
    expect(BigInt(counter.spent ?? 0)).toBe(worstNanos);
  });

  it('counts spend recorded before the rule existed', async () => {
    const llm = t.app.get(LlmClientFactory).forUser('u-before');
    await llm.chat(PARAMS);
    await llm.chat(PARAMS);
    const limitNanos = worstNanos * 3n; // room for one more call only
    await createRule({ id: 'before', scope: { user_id: 'u-before' }, limit_usd: Number(limitNanos) / 1e9, window: 'month', action: 'block' });
    const results = await Promise.allSettled([llm.chat(PARAMS), llm.chat(PARAMS), llm.chat(PARAMS)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect((await recordedSpend(t, 'u-before')).nanos).toBeLessThanOrEqual(limitNanos);
    expect(fake.chatRequests()).toHaveLength(3);
  });

  it('"*" limits each user separately; a token limit reserves prompt + max output', async () => {
    await createRule({ id: 'per-user-tokens', scope: { user_id: '*', model: MODEL }, limit_tokens: 250, window: { rolling_hours: 1 }, action: 'block' });
    const a = t.app.get(LlmClientFactory).forUser('u-tok-a');
    const b = t.app.get(LlmClientFactory).forUser('u-tok-b');
    // Each call may use up to prompt + 100 tokens: two fit under 250, a third does not.
    const ra = await Promise.allSettled([a.chat(PARAMS), a.chat(PARAMS), a.chat(PARAMS)]);
    const rb = await Promise.allSettled([b.chat(PARAMS), b.chat(PARAMS), b.chat(PARAMS)]);
    expect(ra.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
    expect(rb.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
    const refusal = ra.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(refusal.reason.message).toMatch(/quota rule "per-user-tokens" \(user_id=u-tok-a,model=gpt-4o-mini, rolling window since .*\): used \d+ of its 250 tokens/);
  });

  it('an unpriced model under a block rule is refused before the provider', async () => {
    await createRule({ id: 'unpriced', scope: { user_id: 'u-unpriced' }, limit_usd: '10', window: 'day', action: 'block' });
    const err = await t.app
      .get(LlmClientFactory)
      .forUser('u-unpriced')
      .chat({ ...PARAMS, model: 'my-local-model' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmUnpricedModelException);
    expect((err as Error).message).toContain('quota rule "unpriced"');
    expect(fake.requests).toHaveLength(0);
  });

  it('a crashed process\'s reservations are freed within two QUOTA_RESERVATION_TTL_S slots, even under load, and only once', async () => {
    const store = t.app.get(QuotaCounterStore);
    const rule = parseQuotaRule({ id: 'crash', scope: { user_id: 'u-crash' }, limit_usd: '1', window: 'month', action: 'block' }, 'api', null);
    const scope = { user_id: 'u-crash' };
    const SLOT = 900_000; // the default QUOTA_RESERVATION_TTL_S
    const t0 = Math.floor(Date.UTC(2026, 10, 10, 12) / SLOT) * SLOT + 1000;
    const reserve = (ms: number, nanos: bigint) => store.reserve(rule, scope, windowAt(rule.window, ms, 'UTC'), ms, nanos, 0n);
    const dead = await reserve(t0, 600_000_000n);
    if (!dead.ok) throw new Error('first reservation refused'); // ...and its process dies: never settled
    expect(await reserve(t0 + 1000, 600_000_000n)).toMatchObject({ ok: false, reservedNanos: 600_000_000n, spentNanos: 0n });
    // Other calls keep the counter busy every half slot; the dead reservation still counts meanwhile.
    for (let k = 1; k <= 3; k++) {
      const at = t0 + (k * SLOT) / 2;
      const r = await reserve(at, 100_000_000n);
      if (!r.ok) throw new Error(`busy call ${k} refused`);
      await store.settle(r.reservation, 100_000_000n, 0n, at);
      expect(await reserve(at, 500_000_000n)).toMatchObject({ ok: false, reservedNanos: 600_000_000n });
    }
    // Two slots after it was taken, it is gone.
    const later = t0 + 2 * SLOT;
    const second = await reserve(later, 600_000_000n);
    if (!second.ok) throw new Error('the dead reservation still holds the budget');
    // A late settle of the dead reservation adds its spend but frees nothing (it is no longer counted).
    await store.settle(dead.reservation, 100_000_000n, 0n, later);
    expect(await reserve(later, 400_000_000n)).toMatchObject({ ok: false, spentNanos: 400_000_000n, reservedNanos: 600_000_000n });
    await store.settle(second.reservation, 300_000_000n, 0n, later);
    expect(await reserve(later, 300_000_000n)).toMatchObject({ ok: true });
    expect(await reserve(later, 1n)).toMatchObject({ ok: false, spentNanos: 700_000_000n, reservedNanos: 300_000_000n });
  });

  it('a rolling window lets spend leave after N hours (hourly buckets, never less than N hours)', async () => {
    const store = t.app.get(QuotaCounterStore);
    const rule = parseQuotaRule({ id: 'rolling', scope: { user_id: 'u-roll' }, limit_usd: '1', window: { rolling_hours: 2 }, action: 'block' }, 'api', null);
    const scope = { user_id: 'u-roll' };
    const H = 3_600_000;
    const t0 = Date.UTC(2026, 10, 10, 12, 30);
    const reserve = (ms: number, nanos: bigint) => store.reserve(rule, scope, windowAt(rule.window, ms, 'UTC'), ms, nanos, 0n);
    const a = await reserve(t0, 700_000_000n);
    if (!a.ok) throw new Error('first reservation refused');
    await store.settle(a.reservation, 700_000_000n, 0n, t0);
    // 1.5 h and 2.4 h later the 12:30 spend is still inside the (whole-hour) window.
    expect(await reserve(t0 + 1.5 * H, 400_000_000n)).toMatchObject({ ok: false, spentNanos: 700_000_000n });
    expect(await reserve(t0 + 2.4 * H, 400_000_000n)).toMatchObject({ ok: false, spentNanos: 700_000_000n });
    // From 15:00 the 12:00 bucket has left a 2-hour window starting after 13:00.
    const c = await reserve(t0 + 2.5 * H, 400_000_000n);
    expect(c.ok).toBe(true);
  });

  it('old windows\' counters and those of deleted rules are pruned', async () => {
    const store = t.app.get(QuotaCounterStore);
    const ds = t.app.get(DataSource);
    const rule = parseQuotaRule({ id: 'prune', scope: { user_id: 'u-prune' }, limit_usd: '1', window: 'day', action: 'block' }, 'api', null);
    const old = Date.UTC(2026, 0, 1, 12);
    const now = old + 40 * 24 * 3_600_000;
    for (const ms of [old, now]) expect((await store.reserve(rule, { user_id: 'u-prune' }, windowAt(rule.window, ms, 'UTC'), ms, 1n, 0n)).ok).toBe(true);
    const count = async () => Number((await ds.query(`SELECT COUNT(*) AS n FROM quota_counters WHERE rule_id = 'prune'`))[0].n);
    expect(await count()).toBe(2);
    await store.prune(now, ['prune']);
    expect(await count()).toBe(1);
    await store.prune(now, []); // the rule's current counter was created just now: kept a day
    expect(await count()).toBe(1);
    await store.prune(now + 25 * 3_600_000, []);
    expect(await count()).toBe(0);
  });

  it('a "task" window limits each task separately; status shows each task', async () => {
    await createRule({ id: 'per-task', scope: { model: MODEL }, limit_usd: nanosToUsdExact(worstNanos * 2n), window: 'task', action: 'block' });
    const f = t.app.get(LlmClientFactory);
    const a = f.forTask('t-quota-a');
    const b = f.forTask('t-quota-b');
    // No user: the per-user rules of the tests above do not apply to these calls.
    const results = await Promise.allSettled([a.chat(PARAMS), a.chat(PARAMS), a.chat(PARAMS), b.chat(PARAMS), b.chat(PARAMS), b.chat(PARAMS)]);
    // Which of three parallel calls loses is up to the race; two of each task's three get through.
    expect(results.slice(0, 3).filter((r) => r.status === 'fulfilled')).toHaveLength(2);
    expect(results.slice(3).filter((r) => r.status === 'fulfilled')).toHaveLength(2);
    const refusal = (results.slice(0, 3).find((r) => r.status === 'rejected') as PromiseRejectedResult).reason as Error;
    expect(refusal.message).toMatch(/quota rule "per-task" \(model=gpt-4o-mini,task_id=t-quota-a, task window\)/);

    const status = (await t.app.inject({ method: 'GET', url: '/api/v1/quotas/status' })).json();
    const perTask = status.rules.find((r: { rule_id: string }) => r.rule_id === 'per-task');
    const values = perTask.scope_values
      .filter((v: { scope: { task_id: string } }) => v.scope.task_id.startsWith('t-quota-'))
      .map((v: { scope: object; spend_usd: string; percent: number }) => [v.scope, v.spend_usd, v.percent]);
    expect(values.sort((x: [{ task_id: string }], y: [{ task_id: string }]) => x[0].task_id.localeCompare(y[0].task_id))).toEqual([
      [{ model: MODEL, task_id: 't-quota-a' }, nanosToUsdExact(worstNanos * 2n), 100],
      [{ model: MODEL, task_id: 't-quota-b' }, nanosToUsdExact(worstNanos * 2n), 100],
    ]);
    // Per-task limits are never exported per task.
    const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).not.toContain('t-quota-a');
  });

  it('evaluation brings a counter up to usage recorded past it (a replica a moment behind on its rules)', async () => {
    await createRule({ id: 'catch-up', scope: { user_id: 'u-catch' }, limit_usd: nanosToUsdExact(worstNanos * 3n), window: 'day', action: 'block' });
    const llm = t.app.get(LlmClientFactory).forUser('u-catch');
    await llm.chat(PARAMS); // the counter now holds one call
    // Two more calls' worth recorded by a process that did not count them against the rule.
    await t.app.get(UsageRecorder).record(usageRecord({ userId: 'u-catch', requestedModel: MODEL, costNanos: Number(worstNanos * 2n) }));
    await t.app.get(UsageRecorder).flush();
    expect((await t.app.inject({ method: 'POST', url: '/api/v1/quotas/evaluate' })).statusCode).toBe(200);
    const err = await llm.chat(PARAMS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmBudgetExceededException);
    expect((err as Error).message).toContain(`spent ${nanosToUsdExact(worstNanos * 3n)} USD`);
  });

  it('alert rules never refuse', async () => {
    await createRule({ id: 'watch-only', scope: { user_id: 'u-watch' }, limit_usd: '0', window: 'day', action: 'alert' });
    await t.app.get(LlmClientFactory).forUser('u-watch').chat(PARAMS);
    expect(fake.chatRequests()).toHaveLength(1);
  });
};

describe('quota enforcement (block rules, SQLite)', enforcementSuite('sqlite'));
describePostgres('quota enforcement (block rules)', enforcementSuite('postgres'));
