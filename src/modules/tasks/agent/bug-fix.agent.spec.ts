import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { copyAsRepo } from '../../../demo/git-init';
import { demoResponder, MATH_BUG, MATH_FIX, STRINGS_BUG, STRINGS_FIX, STRINGS_WRONG_FIX } from '../../../demo/demo-responder';
import { AgentLlm, AgentProgress, AgentTask, TaskAgentContext } from '../../../plugins/sdk';
import { Responder, SimulatorHandle, startOpenAiCompatibleServer } from '../../../simulator/openai-compatible-server';
import { pidsRunning } from '../../../../test/support/processes';
import { createSandbox } from '../sandbox/create-sandbox';
import { Sandbox } from '../sandbox/sandbox';
import { BugFixAgent, BugFixAgentConfig } from './bug-fix.agent';
import { pickPassthroughEnv } from './sandbox-env';

const SAMPLE_REPO = join(__dirname, '../../../../demo/sample-repo');

/**
 * The agent loop end to end at unit level: a real git repository (the demo's sample repo), real
 * test runs with node in the real bubblewrap sandbox, the real openai SDK against the local
 * OpenAI-compatible simulator.
 * (test/agent-bug-fix.e2e-spec.ts runs it through the service's LlmClient with usage records.)
 */
describe('BugFixAgent (real git, real processes, openai SDK against the simulator)', () => {
  let scratch: string;
  let repo: string;
  let sim: SimulatorHandle;
  let respond: Responder;
  let openai: OpenAI;
  let config: BugFixAgentConfig;
  let agent: BugFixAgent;
  let sandbox: Sandbox;
  const exporter = new InMemorySpanExporter();

  beforeAll(async () => {
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
    scratch = mkdtempSync(join(tmpdir(), 'asa-agent-spec-'));
    chmodSync(scratch, 0o711); // the sandbox's user passes through to the workspaces
    sandbox = await createSandbox({ sandbox: 'bwrap', sandboxNetwork: false, workspaceDir: scratch, executableSearchPath: process.env.PATH ?? '' });
    repo = join(scratch, 'sample-repo');
    await copyAsRepo(SAMPLE_REPO, repo);
    sim = await startOpenAiCompatibleServer({ respond: (req) => respond(req) });
    openai = new OpenAI({ apiKey: 'sk-simulated', baseURL: sim.baseUrl, maxRetries: 0, organization: null, project: null });
  });
  afterAll(async () => {
    await sim.close();
    rmSync(scratch, { recursive: true, force: true });
    trace.disable();
    context.disable();
  });
  beforeEach(() => {
    respond = demoResponder;
    sim.requests.length = 0;
    exporter.reset();
    config = {
      repoUrlSchemes: ['https', 'http', 'file', 'local'],
      workspaceDir: join(scratch, `work-${Date.now()}`),
      cloneTimeoutMs: 20_000,
      testTimeoutMs: 20_000,
      killGraceMs: 300,
      testOutputMaxBytes: 64 * 1024,
      contextMaxTokens: 8_000,
      contextMaxFileBytes: 100_000,
      testEnv: pickPassthroughEnv({ PATH: process.env.PATH }),
    };
    agent = new BugFixAgent(config, sandbox);
  });

  const llm: AgentLlm = { chat: (params, opts) => openai.chat.completions.create(params, { signal: opts?.signal }) };

  function makeCtx(over: Partial<AgentTask> = {}, extra: { llm?: AgentLlm; signal?: AbortSignal } = {}) {
    const progress: AgentProgress[] = [];
    const ctx: TaskAgentContext = {
      task: {
        id: 'task-1',
        userId: null,
        repoUrl: repo,
        bugDescription: MATH_BUG,
        testCommand: 'node test/math.test.js',
        model: 'gpt-4o-mini',
        maxAttempts: 3,
        maxCostUsd: 1,
        ...over,
      },
      llm: extra.llm ?? llm,
      signal: extra.signal ?? new AbortController().signal,
      progress: async (u) => {
        progress.push(u);
      },
    };
    return { ctx, progress };
  }

  const chatPrompts = () => sim.requests.filter((r) => r.path.endsWith('/chat/completions')).map((r) => r.body.messages[1].content as string);
  const workspaceLeft = () => (existsSync(config.workspaceDir) ? readdirSync(config.workspaceDir) : []);

  it('fixes the bug in one attempt: the tests pass, the patch is returned, the workspace is removed', async () => {
    const { ctx, progress } = makeCtx({ repoUrl: `file://${repo}` });
    const result = await agent.run(ctx);

    expect(result).toMatchObject({ outcome: 'succeeded', attempts: 1, patch: MATH_FIX });
    expect(result.testOutputTail).toContain('math: all tests passed');
    expect(workspaceLeft()).toEqual([]);
    // The original repository is untouched.
    expect(readFileSync(join(repo, 'src/math.js'), 'utf8')).toContain('(values.length - 1)');

    const prompts = chatPrompts();
    expect(prompts).toHaveLength(1);
    expect(prompts[0]).toContain(MATH_BUG);
    expect(prompts[0]).toContain('node test/math.test.js');
    expect(prompts[0]).toContain('AssertionError'); // the failing run before any change
    expect(prompts[0]).toContain('(test/math.test.js:8:8)'); // stack paths relative to the repository
    expect(prompts[0]).not.toContain(config.workspaceDir);
    expect(prompts[0]).toContain('return sum(values) / (values.length - 1);'); // src/math.js is shown
    expect(prompts[0]).toMatch(/## Repository files\n`+\n[\s\S]*src\/strings\.js/);
    expect(sim.requests[0].body.model).toBe('gpt-4o-mini');

    expect(progress.map((p) => p.stage)).toEqual(['clone', 'test', 'test', 'context', 'model', 'apply', 'test', 'test']);
    expect(progress.at(-1)).toMatchObject({ attempt: 1, patch: MATH_FIX });
  });

  it('emits task.clone / task.test / task.context / task.apply spans under the active (task) span', async () => {
    const { ctx } = makeCtx();
    const parent = trace.getTracer('spec').startSpan('task task-1');
    await context.with(trace.setSpan(context.active(), parent), () => agent.run(ctx));
    parent.end();
    const spans = exporter.getFinishedSpans();
    const parentId = parent.spanContext().spanId;
    const byName = (n: string) => spans.filter((s) => s.name === n);
    for (const name of ['task.clone', 'task.test', 'task.context', 'task.apply']) {
      expect(byName(name).length, name).toBeGreaterThan(0);
      for (const s of byName(name)) expect(s.parentSpanContext?.spanId, name).toBe(parentId);
    }
    const tests = byName('task.test');
    expect(tests.map((s) => s.attributes['asa.task.attempt'])).toEqual([0, 1]);
    expect(tests.map((s) => s.attributes['asa.task.test.exit_code'])).toEqual([1, 0]);
    expect(tests[0].attributes['asa.task.test.timed_out']).toBe(false);
    expect(byName('task.apply')[0].attributes['asa.task.patch.applied']).toBe(true);
  });

  it('retries after a wrong patch: the second prompt carries the previous patch and the failing output', async () => {
    const { ctx } = makeCtx({ bugDescription: STRINGS_BUG, testCommand: 'node test/strings.test.js' });
    const result = await agent.run(ctx);
    expect(result).toMatchObject({ outcome: 'succeeded', attempts: 2, patch: STRINGS_FIX });
    const prompts = chatPrompts();
    expect(prompts).toHaveLength(2);
    expect(prompts[0]).not.toContain('failed');
    expect(prompts[1]).toContain('## Attempt 1 of 3 failed');
    expect(prompts[1]).toContain(STRINGS_WRONG_FIX.trim());
    expect(prompts[1]).toContain("'hello-big---world'"); // what the wrong patch produced
    // The retry starts from the original code: its context shows the unpatched line.
    expect(prompts[1]).toContain(".replace(' ', '-');\n}");
    expect(workspaceLeft()).toEqual([]);
  });

  it('fails with tests_failed after max_attempts wrong patches', async () => {
    respond = () => ({ content: `\`\`\`diff\n${STRINGS_WRONG_FIX}\`\`\`` });
    const { ctx } = makeCtx({ bugDescription: STRINGS_BUG, testCommand: 'node test/strings.test.js', maxAttempts: 2 });
    const result = await agent.run(ctx);
    expect(result).toMatchObject({ outcome: 'failed', reason: 'tests_failed', attempts: 2, patch: STRINGS_WRONG_FIX });
    expect(result.testOutputTail).toContain('every run of spaces becomes one dash');
    expect(chatPrompts()).toHaveLength(2);
  });

  it('feeds back a patch that does not apply, and fails with patch_failed when none does', async () => {
    const bad = MATH_FIX.replace(' function average(values) {', ' function mean(values) {');
    respond = () => ({ content: `\`\`\`diff\n${bad}\`\`\`` });
    const { ctx } = makeCtx({ maxAttempts: 2 });
    const result = await agent.run(ctx);
    expect(result).toMatchObject({ outcome: 'failed', reason: 'patch_failed', attempts: 2, patch: bad });
    expect(result.detail).toMatch(/^no patch applied in 2 attempt\(s\); last git apply error: \S/);
    expect(chatPrompts()[1]).toMatch(/does not apply[\s\S]*git apply:\n`+\n.*(patch failed|does not apply|corrupt)/);
  });

  it('fails with no_patch when the model never answers with a diff', async () => {
    respond = () => ({ content: 'I think the bug is in average().' });
    const { ctx } = makeCtx({ maxAttempts: 2 });
    const result = await agent.run(ctx);
    expect(result).toMatchObject({ outcome: 'failed', reason: 'no_patch', attempts: 2, patch: null });
    expect(result.detail).toBe('the model answered 2 time(s) without a unified diff in a ```diff block');
    expect(chatPrompts()[1]).toContain('contained no unified diff');
  });

  it.each([
    ['LLM_BUDGET_EXCEEDED', 'budget_exceeded'],
    ['LLM_UNPRICED_MODEL', 'unpriced_model'],
  ])('stops when the LLM refuses a call for the budget (%s -> %s)', async (code, reason) => {
    let calls = 0;
    const refusing: AgentLlm = {
      chat: async (params, opts) => {
        if (++calls > 1) throw Object.assign(new Error('LLM call refused: budget'), { code });
        return llm.chat(params, opts);
      },
    };
    respond = () => ({ content: `\`\`\`diff\n${STRINGS_WRONG_FIX}\`\`\`` });
    const { ctx } = makeCtx({ bugDescription: STRINGS_BUG, testCommand: 'node test/strings.test.js' }, { llm: refusing });
    const result = await agent.run(ctx);
    expect(result).toMatchObject({ outcome: 'failed', reason, attempts: 2, detail: 'LLM call refused: budget' });
    expect(chatPrompts()).toHaveLength(1);
    expect(workspaceLeft()).toEqual([]);
  });

  it('cancel kills a long-running test command (everything it started) and removes the workspace', async () => {
    const controller = new AbortController();
    const { ctx, progress } = makeCtx({ testCommand: 'sleep 310001 & setsid sleep 310002 & sleep 310003' }, { signal: controller.signal });
    const running = agent.run(ctx);
    await vi.waitFor(() => expect(pidsRunning('sleep', '310003')).toHaveLength(1), { timeout: 10_000 });
    controller.abort();
    const result = await running;
    expect(result).toMatchObject({ outcome: 'failed', reason: 'cancelled' });
    for (const s of ['310001', '310002', '310003']) expect(pidsRunning('sleep', s), s).toEqual([]);
    expect(progress.map((p) => p.stage)).toContain('test');
    expect(chatPrompts()).toHaveLength(0);
    expect(workspaceLeft()).toEqual([]);
  });

  it('a test command that hangs is killed at the timeout and counts as a failed run', async () => {
    config.testTimeoutMs = 700;
    respond = () => ({ content: `\`\`\`diff\n${MATH_FIX}\`\`\`` });
    const { ctx } = makeCtx({ testCommand: 'sleep 300', maxAttempts: 1 });
    const result = await agent.run(ctx);
    expect(result).toMatchObject({ outcome: 'failed', reason: 'tests_failed', attempts: 1 });
    expect(result.testOutputTail).toContain('timed out after 700 ms');
  });

  it('rejects a bad repo_url without running git, and reports a clone that fails', async () => {
    expect(await agent.run(makeCtx({ repoUrl: 'ext::sh -c touch% /tmp/x' }).ctx)).toMatchObject({ outcome: 'failed', reason: 'invalid_repo_url', attempts: 0 });
    expect(await agent.run(makeCtx({ repoUrl: '--upload-pack=x' }).ctx)).toMatchObject({ reason: 'invalid_repo_url' });
    const missing = await agent.run(makeCtx({ repoUrl: join(scratch, 'no-such-repo') }).ctx);
    expect(missing).toMatchObject({ outcome: 'failed', reason: 'clone_failed', attempts: 0 });
    expect(missing.testOutputTail).toMatch(/git clone failed/);
    expect(missing.detail).toMatch(/git clone failed .*does not appear to be a git repository/s);
    expect(workspaceLeft()).toEqual([]);
    expect(sim.requests).toHaveLength(0);
  });

  it('a model error that is not a budget refusal ends the task with llm_error', async () => {
    respond = () => ({ error: { status: 400, message: 'model not found' } });
    const result = await agent.run(makeCtx().ctx);
    expect(result).toMatchObject({ outcome: 'failed', reason: 'llm_error', attempts: 1 });
    expect(result.detail).toMatch(/^model call failed: 400 .*model not found/);
    expect(workspaceLeft()).toEqual([]);
  });
});
