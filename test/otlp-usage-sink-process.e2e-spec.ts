import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { FakeOpenAi } from './fixtures/fake-openai';
import { latestPoints, OtlpReceiver, startOtlpReceiver } from './support/otlp-receiver';
import { sqlite, waitFor } from './support/pipeline';
import { buildService, freePort, ProcessExit, startService, waitForHttp, taskServiceEnv } from './support/service-process';
import { sandboxReachableTempDir } from './support/scratch';
import { createBuggyRepo } from './support/tasks';

/**
 * The built service as a real process with OTLP_USAGE_SINK=true (the sink's modules are loaded on
 * demand from dist/, as in production): a task's LLM calls stay queued (an hour between exports),
 * then SIGTERM. The shutdown must drain the sink's queue and make the final export before exit.
 */
describe('OTLP usage sink in the built service (real process)', () => {
  let dir: string;
  let fake: FakeOpenAi;
  let receiver: OtlpReceiver;

  beforeAll(async () => {
    buildService();
    dir = sandboxReachableTempDir('asa-otlp-');
    fake = await FakeOpenAi.start({ defaultReply: { content: 'no idea', usage: { prompt_tokens: 1234, completion_tokens: 56 } } });
    receiver = await startOtlpReceiver();
  }, 300_000);
  afterAll(async () => {
    await fake?.close();
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('exports the queued usage as metrics and log records on SIGTERM, matching the database', async () => {
    const repo = createBuggyRepo(dir);
    const db = join(dir, 'asa.db');
    const port = await freePort();
    const svc = startService({
      cwd: dir,
      env: {
        ...taskServiceEnv({ port, llmBaseUrl: fake.baseUrl, workspaceDir: join(dir, 'workspaces') }),
        DATABASE_URL: `sqlite:${db}`,
        // Tracing on too, to the same receiver: the two share nothing but the endpoint.
        ENABLE_OPENTELEMETRY: 'true',
        OTEL_BSP_SCHEDULE_DELAY: '50',
        OTLP_USAGE_SINK: 'true',
        OTLP_USAGE_LOGS: 'true',
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_METRIC_EXPORT_INTERVAL: '3600000',
      },
    });
    let exit: ProcessExit | undefined;
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitForHttp(`${base}/health`, 60_000, svc as never);
      const submitted = await fetch(`${base}/api/v1/task/submit`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ repo_url: repo.path, bug_description: 'add(2, 3) returns -1 instead of 5', test_command: repo.testCommand, max_attempts: 2 }),
      });
      expect(submitted.status, await submitted.clone().text()).toBe(202);
      const taskId = ((await submitted.json()) as { task_id: string }).task_id;
      await waitFor(
        'the task to finish',
        async () => ['succeeded', 'failed', 'cancelled'].includes(((await (await fetch(`${base}/api/v1/task/${taskId}`)).json()) as { status: string }).status),
        60_000,
      );
      expect(fake.chatRequests().length).toBeGreaterThan(0);
      expect(receiver.metricPoints.filter((p) => p.name === 'gen_ai.client.token.usage')).toHaveLength(0); // still queued
      exit = await svc.stop('SIGTERM');
    } finally {
      if (svc.child.exitCode === null && svc.child.signalCode === null) await svc.stop('SIGKILL');
    }
    expect(exit?.signal ?? exit?.code, svc.output()).toBe('SIGTERM');

    const conn = sqlite(db);
    const rows = (await conn.all('SELECT id, input_tokens, output_tokens FROM llm_usage')) as { id: string; input_tokens: number; output_tokens: number }[];
    await conn.close();
    expect(rows.length).toBe(fake.chatRequests().length);
    const points = latestPoints(receiver.metricPoints, 'gen_ai.client.token.usage');
    const total = (type: string) => points.filter((p) => p.attributes['gen_ai.token.type'] === type).reduce((n, p) => n + p.sum!, 0);
    expect(total('input')).toBe(rows.reduce((n, r) => n + r.input_tokens, 0));
    expect(total('output')).toBe(rows.reduce((n, r) => n + r.output_tokens, 0));
    expect(receiver.logRecords.map((l) => l.attributes.id).sort()).toEqual(rows.map((r) => r.id).sort());
    expect(svc.output()).toMatch(/usage queues drained: .*otlp \d+ written/);
    // Traces still flow, and the sink's own exports make no spans in them.
    expect(receiver.spans.some((s) => s.name === 'chat gpt-4o-mini')).toBe(true);
    expect(receiver.spans.filter((s) => /v1\/(metrics|logs)/.test(String(s.attributes['url.full'] ?? s.attributes['http.url'] ?? '')))).toEqual([]);
  });
});
