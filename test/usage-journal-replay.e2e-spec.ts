import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PricingService } from '../src/modules/llm/pricing/pricing.service';
import { CallStart, encodeEntry } from '../src/modules/usage/journal/journal-entry';
import { LOCK_FILE } from '../src/modules/usage/journal/journal-lock';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { createTestApp, TestApp } from './support/create-app';
import { sqlite } from './support/pipeline';
import { usageRecord } from './support/usage-records';

function callStart(model: string, createdAtMs: number): CallStart {
  return {
    id: randomUUID(),
    createdAtMs,
    taskId: 'task-replay',
    userId: 'user-replay',
    provider: 'openai',
    operation: 'chat',
    requestedModel: model,
    streamed: true,
    traceId: null,
    promptTokens: 2000,
  };
}

function sample(body: string, series: string): number {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1).split(' ')[0]);
}

/**
 * What a killed process left in its journal, replayed by the real AppModule at start: the
 * replay runs during init, so by the time the app is up the records are in the pipeline.
 */
describe('usage journal replay at start (SQLite)', () => {
  let dir: string;
  let t: TestApp | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'asa-replay-'));
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores finished calls the database lacks, records calls that never ended as interrupted, and skips what is stored or damaged', async () => {
    const db = join(dir, 'asa.db');
    // A first run stored one record (then the process was killed).
    const alreadyStored = usageRecord({ requestedModel: 'gpt-4o-mini', taskId: 'task-replay' });
    const first = await createTestApp({ env: { DATABASE_URL: `sqlite:${db}`, USAGE_JOURNAL: 'off' } });
    await first.app.get(UsageRecorder).record(alreadyStored);
    await first.app.get(UsageRecorder).flush();
    await first.close();

    const journal = join(dir, 'journal');
    mkdirSync(journal);
    const t0 = Date.now() - 10_000;
    const queued = usageRecord({ requestedModel: 'gpt-4o-mini', taskId: 'task-replay' });
    const priced = callStart('gpt-4o-mini', t0);
    const unpriced = callStart('house-model-x', t0 + 1_000);
    writeFileSync(
      join(journal, 'segment-000000000003.log'),
      encodeEntry({ t: 'run', run: { pid: 999_999, startedAtMs: t0 - 1_000 } }) +
        encodeEntry({ t: 'end', record: alreadyStored }) +
        '0badc0de {"t":"end","record":{"id":"garbage"}}\n' + // damaged: checksum mismatch
        encodeEntry({ t: 'end', record: queued }) +
        encodeEntry({ t: 'start', call: priced }) +
        encodeEntry({ t: 'start', call: unpriced }) +
        encodeEntry({ t: 'end', record: usageRecord({ id: unpriced.id }) }).slice(0, 50), // torn by the kill
    );
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(join(journal, LOCK_FILE), JSON.stringify({ pid: Number(dead.stdout), host: hostname(), startedAtMs: t0, startTicks: '1' }));

    t = await createTestApp({ env: { DATABASE_URL: `sqlite:${db}`, USAGE_JOURNAL_DIR: journal } });
    await t.app.get(UsageRecorder).flush();

    const reader = sqlite(db);
    const rows = await reader.all<Record<string, unknown>>(
      'SELECT id, status, error_type, estimated, input_tokens, output_tokens, cost_nanos, unpriced, streamed, latency_ms, user_id FROM llm_usage',
    );
    await reader.close();
    const byId = new Map(rows.map((r) => [r.id as string, r]));
    expect(rows).toHaveLength(4);
    expect(byId.get(queued.id)).toMatchObject({ status: 'success', estimated: 0, input_tokens: 100 });
    const price = new PricingService({ provider: 'openai', pricingFile: '/nonexistent/pricing.json' }).price(
      { inputTokens: 2000, cachedInputTokens: 0, cacheWriteTokens: 0, outputTokens: 0, reasoningTokens: 0 },
      ['gpt-4o-mini'],
    );
    expect(price.costNanos).toBeGreaterThan(0);
    expect(byId.get(priced.id)).toMatchObject({
      status: 'error',
      error_type: 'interrupted',
      estimated: 1,
      input_tokens: 2000,
      output_tokens: 0,
      cost_nanos: price.costNanos,
      unpriced: 0,
      streamed: 1,
      user_id: 'user-replay',
    });
    // Its latency: from its start to the dead run's last journal write (the file was written just now).
    expect(byId.get(priced.id)!.latency_ms as number).toBeGreaterThanOrEqual(10_000 - 1_000);
    expect(byId.get(unpriced.id)).toMatchObject({ error_type: 'interrupted', estimated: 1, cost_nanos: null, unpriced: 1 });

    // The record already stored was not delivered again: Prometheus counted only the other three.
    const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(sample(metrics, 'llm_requests_total{model="gpt-4o-mini",provider="openai",status="success"}')).toBe(1);
    expect(sample(metrics, 'llm_requests_total{model="gpt-4o-mini",provider="openai",status="error"}')).toBe(1);
    expect(sample(metrics, 'llm_request_errors_total{model="gpt-4o-mini",provider="openai",error_type="interrupted"}')).toBe(1);
    expect(sample(metrics, 'llm_requests_total{model="house-model-x",provider="openai",status="error"}')).toBe(1);

    // The old segment is gone; this run's segment holds what was replayed until the database confirmed it.
    expect(readdirSync(journal).filter((f) => f.startsWith('segment-'))).toEqual(['segment-000000000004.log']);
  });
});
