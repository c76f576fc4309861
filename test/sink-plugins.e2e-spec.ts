import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { serializeUsageRecord, type SerializedUsageRecord, type UsageRecord } from '../src/plugins/sdk';
import { createTestApp, TestApp } from './support/create-app';
import { ensureSdkBuilt } from './support/sdk-build';
import { usageRecord } from './support/usage-records';

const record = (i: number): UsageRecord =>
  usageRecord({ taskId: 'task-plugin', userId: 'user-1', inputTokens: 100 + i, outputTokens: 10, totalTokens: 110 + i, costNanos: 21_000 + i });

describe('usage sink plugins named in USAGE_SINK_PLUGINS', () => {
  let t: TestApp | undefined;
  // The example requires asa-backend/sdk, which resolves to the built SDK (dist/sdk).
  beforeAll(() => ensureSdkBuilt(), 120_000);
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('loads the example JSON Lines sink next to the built-in sinks, and it receives every record', async () => {
    const out = join(tmpdir(), `asa-jsonl-${randomUUID()}.jsonl`);
    t = await createTestApp({
      env: { USAGE_SINK_PLUGINS: resolve(__dirname, '../examples/jsonl-usage-sink.js'), JSONL_USAGE_FILE: out },
    });
    const recorder = t.app.get(UsageRecorder);
    expect(recorder.stats().map((s) => s.sink)).toEqual(expect.arrayContaining(['database', 'prometheus', 'jsonl-file']));
    const sent = Array.from({ length: 25 }, (_, i) => record(i));
    for (const r of sent) await recorder.record(r);
    await recorder.flush();
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as SerializedUsageRecord);
    expect(lines.map((r) => r.id)).toEqual(sent.map((r) => r.id));
    // Each line is the SDK's snake_case form: the usage API's names, cost as an exact decimal string.
    expect(lines[3]).toEqual(serializeUsageRecord(sent[3]));
    expect(lines[3]).toMatchObject({ task_id: 'task-plugin', user_id: 'user-1', input_tokens: 103, cost_usd: '0.000021003', created_at: new Date(sent[3].createdAtMs).toISOString() });
    // The same records reached the database sink too.
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/usage/task/task-plugin' });
    expect(res.json().total_requests).toBe(25);
  });

  it('refuses to start when a plugin cannot be loaded, naming it', async () => {
    await expect(createTestApp({ env: { USAGE_SINK_PLUGINS: './no/such/sink.js' } })).rejects.toThrow(
      /Usage sink plugin "\.\/no\/such\/sink\.js" could not be loaded/,
    );
  });

  it('refuses a module that does not export createUsageSink()', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'asa-plugin-'));
    const bad = join(dir, 'not-a-sink.js');
    writeFileSync(bad, 'exports.somethingElse = () => 1;\n');
    await expect(createTestApp({ env: { USAGE_SINK_PLUGINS: bad } })).rejects.toThrow(/does not export createUsageSink\(\)/);
  });
});
