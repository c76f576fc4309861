import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeOpenAi } from './fixtures/fake-openai';
import { createTestApp, TestApp } from './support/create-app';
import { BuggyRepo, createBuggyRepo, isFinal, until, waitForTask } from './support/tasks';

/**
 * A task runs inside a `task {id}` span: the bug-fix agent's stage spans and the LLM client's
 * GenAI spans are its children, so one trace shows a whole task.
 */
describe('task tracing', () => {
  const exporter = new InMemorySpanExporter();
  let t: TestApp;
  let fake: FakeOpenAi;
  let dir: string;
  let repo: BuggyRepo;

  beforeAll(async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
    dir = mkdtempSync(join(tmpdir(), 'asa-trace-'));
    chmodSync(dir, 0o711); // the sandbox's user (uid 65534 when tests run as root) passes through to the workspaces
    repo = createBuggyRepo(dir);
    fake = await FakeOpenAi.start();
    t = await createTestApp({
      env: { OPENAI_BASE_URL: fake.baseUrl, OPENAI_API_KEY: 'sk-test', OPENAI_MAX_RETRIES: '0', TASK_POLL_INTERVAL_MS: '100', TASK_WORKSPACE_DIR: join(dir, 'ws') },
    });
  });
  afterAll(async () => {
    await t?.close();
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
    trace.disable();
    context.disable();
  });

  it('LLM and stage spans are children of the task span, which carries the task attributes', async () => {
    fake.enqueue({ content: `\`\`\`diff\n${repo.goodDiff}\`\`\`` });
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/task/submit',
      payload: { repo_url: repo.path, bug_description: 'add subtracts', test_command: repo.testCommand, user_id: 'alice' },
    });
    const id = res.json().task_id;
    expect((await waitForTask(t.app, id, isFinal, { timeoutMs: 60_000 })).status).toBe('succeeded');

    const name = `task ${id}`;
    await until(() => exporter.getFinishedSpans().some((s) => s.name === name), 'task span ended');
    const spans = exporter.getFinishedSpans();
    const root = spans.find((s) => s.name === name) as ReadableSpan;
    expect(root.attributes).toMatchObject({ 'asa.task_id': id, 'asa.user_id': 'alice', 'asa.task.status': 'succeeded', 'asa.task.attempts': 1 });
    const taskTrace = spans.filter((s) => s.spanContext().traceId === root.spanContext().traceId);
    const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
    const llm = taskTrace.filter((s) => s.name.startsWith('chat '));
    expect(llm).toHaveLength(1);
    expect(parentOf(llm[0])).toBe(root.spanContext().spanId);
    for (const stage of ['task.clone', 'task.test']) {
      const found = taskTrace.filter((s) => s.name === stage);
      expect(found.length, stage).toBeGreaterThan(0);
      for (const s of found) expect(parentOf(s), stage).toBe(root.spanContext().spanId);
    }
  });
});
