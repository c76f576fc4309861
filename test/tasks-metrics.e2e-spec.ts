import { getDataSourceToken } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { TASK_AGENTS } from '../src/plugins/sdk';
import { FakeOpenAi } from './fixtures/fake-openai';
import { createTestApp, TestApp } from './support/create-app';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';
import { insertTaskRow, isFinal, ScriptedAgent, until, waitForTask } from './support/tasks';

const DAY_MS = 86_400_000;

/** USD decimal string -> nano-dollars, for exact reference sums. */
const nanos = (usd: string) => {
  const [w, f = ''] = usd.split('.');
  return BigInt(w) * 1_000_000_000n + BigInt(f.padEnd(9, '0'));
};
const usd = (n: bigint) => Number(`${n / 1_000_000_000n}.${(n % 1_000_000_000n).toString().padStart(9, '0')}`);
const divRound = (a: bigint, b: bigint) => (a * 2n + b) / (2n * b);

/**
 * GET /api/v1/usage/metrics/tasks over a known set of tasks run by the real queue, compared with
 * reference figures computed from the task rows and the usage API.
 */
function taskMetricsSuite(env: () => Record<string, string>) {
  let t: TestApp;
  let fake: FakeOpenAi;
  const agent = new ScriptedAgent();
  const ids: Record<string, string> = {};
  const get = (url: string) => t.app.inject({ method: 'GET', url });
  const submit = async (bug: string, extra: Record<string, unknown> = {}) => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/task/submit',
      payload: { repo_url: 'https://github.com/example/repo', bug_description: bug, test_command: 'true', ...extra },
    });
    expect(res.statusCode).toBe(202);
    return res.json().task_id as string;
  };

  beforeAll(async () => {
    fake = await FakeOpenAi.start({ defaultReply: { content: 'a patch', usage: { prompt_tokens: 1234, completion_tokens: 321 } } });
    t = await createTestApp({
      env: { OPENAI_BASE_URL: fake.baseUrl, OPENAI_API_KEY: 'sk-test-not-real', OPENAI_MAX_RETRIES: '0', TASK_CONCURRENCY: '2', TASK_POLL_INTERVAL_MS: '50', TASK_SHUTDOWN_GRACE_MS: '0', ...env() },
      override: (b) => b.overrideProvider(TASK_AGENTS).useValue([agent]),
    });
    ids.ok1 = await submit('llm-succeed', { user_id: 'alice' });
    ids.ok2 = await submit('llm-succeed', { user_id: 'bob' });
    ids.fail = await submit('llm-fail', { max_attempts: 2, user_id: 'alice' });
    ids.boom = await submit('throw');
    for (const id of Object.values(ids)) await waitForTask(t.app, id, isFinal);
    ids.cancel = await submit('hold', { user_id: 'alice' });
    await waitForTask(t.app, ids.cancel, (x) => x.status === 'running');
    expect((await t.app.inject({ method: 'POST', url: `/api/v1/task/${ids.cancel}/cancel` })).json().status).toBe('cancelled');
    ids.queued = await submit('hold');
    await until(() => agent.started.includes(ids.queued), 'last task running');
    await t.app.get(UsageRecorder).flush();
    // An old task outside a 7-day window, inside a 30-day one.
    await insertTaskRow(t.app.get<DataSource>(getDataSourceToken()), {
      id: '44444444-4444-4444-8444-444444444444',
      status: 'succeeded',
      userId: 'alice',
      bugDescription: 'old',
      createdAtMs: Date.now() - 10 * DAY_MS,
      startedAtMs: Date.now() - 10 * DAY_MS,
      finishedAtMs: Date.now() - 10 * DAY_MS + 100_000,
    });
  });
  afterAll(async () => {
    agent.releaseAll();
    await t?.close();
    await fake?.close();
  });

  it('counts, success rate, durations and exact costs over the window', async () => {
    const res = await get('/api/v1/usage/metrics/tasks?days=7');
    expect(res.statusCode).toBe(200);
    const m = res.json();

    const finished = ['ok1', 'ok2', 'fail', 'boom', 'cancel'];
    const rows = await Promise.all(finished.map(async (k) => (await get(`/api/v1/task/${ids[k]}`)).json()));
    const durationsMs = rows.map((r) => Date.parse(r.finished_at) - Date.parse(r.started_at)).sort((a, b) => a - b);
    let total = 0n;
    for (const k of Object.keys(ids)) total += nanos((await get(`/api/v1/usage/task/${ids[k]}`)).json().total_cost_usd_exact ?? '0');
    expect(total).toBeGreaterThan(0n);

    expect(m).toEqual({
      period_days: 7,
      total_tasks: 6,
      by_status: { queued: 0, running: 1, succeeded: 2, failed: 2, cancelled: 1 },
      failure_reasons: { tests_failed: 1, agent_error: 1 },
      success_rate_percent: 50,
      avg_duration_seconds: Math.round(durationsMs.reduce((a, b) => a + b, 0) / durationsMs.length) / 1000,
      p95_duration_seconds: durationsMs[durationsMs.length - 1] / 1000,
      total_cost_usd: usd(total),
      total_cost_usd_exact: expect.stringMatching(/^\d+\.\d{9}$/),
      avg_cost_per_task_usd: usd(divRound(total, 5n)),
      cost_per_successful_task_usd: usd(divRound(total, 2n)),
    });
    expect(nanos(m.total_cost_usd_exact)).toBe(total);
  });

  it('honours the window and the user filter', async () => {
    const month = (await get('/api/v1/usage/metrics/tasks?days=30')).json();
    expect(month.total_tasks).toBe(7);
    expect(month.by_status.succeeded).toBe(3);
    const alice = (await get('/api/v1/usage/metrics/tasks?days=7&user_id=alice')).json();
    expect(alice.by_status).toEqual({ queued: 0, running: 0, succeeded: 1, failed: 1, cancelled: 1 });
    expect(alice.success_rate_percent).toBe(50);
    const nobody = (await get('/api/v1/usage/metrics/tasks?days=7&user_id=nobody')).json();
    expect(nobody).toMatchObject({ total_tasks: 0, success_rate_percent: 0, avg_duration_seconds: 0, p95_duration_seconds: 0, total_cost_usd: 0, cost_per_successful_task_usd: 0 });
    for (const q of ['days=0', 'days=abc', 'days=3651', 'user_id=a%20b']) expect((await get(`/api/v1/usage/metrics/tasks?${q}`)).statusCode, q).toBe(400);
  });

  it('/usage/overall reports the task success rate; /usage/task/{id} answers zeros for a task without calls', async () => {
    const overall = (await get('/api/v1/usage/overall?days=7')).json();
    // Every LLM call succeeded (a call success rate would say 100); two of four decided tasks did.
    expect(overall.failed_requests).toBe(0);
    expect(overall.total_requests).toBeGreaterThan(0);
    expect(overall.success_rate_percent).toBe(50);

    const none = await get(`/api/v1/usage/task/${ids.boom}`);
    expect(none.statusCode).toBe(200);
    expect(none.json()).toMatchObject({ task_id: ids.boom, total_requests: 0, total_tokens: 0, total_cost_usd: 0, by_model: {} });
    expect((await get('/api/v1/usage/task/no-such-task')).statusCode).toBe(404);
  });

  it('exports task_success_total and task_duration_seconds by outcome', async () => {
    const text = (await get('/metrics')).body;
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)`, 'm').exec(text)?.[1] ?? NaN);
    expect(value('task_success_total{status="success"}')).toBe(2);
    expect(value('task_success_total{status="failure"}')).toBe(2);
    expect(value('task_success_total{status="cancelled"}')).toBe(1);
    expect(value('task_duration_seconds_count{status="success"}')).toBe(2);
  });
}

describe('task metrics (SQLite)', () => taskMetricsSuite(() => ({})));

describePostgres('task metrics', () => {
  let db: ScratchDatabase;
  beforeAll(async () => {
    db = await createScratchPostgres();
  });
  afterAll(() => db?.drop());
  taskMetricsSuite(() => ({ DATABASE_URL: db.url }));
});
