import 'reflect-metadata';
import { LoggerService } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { applyDemoEnv, demoPort } from '../config/demo-env';
import { SimulatorHandle, startOpenAiCompatibleServer } from '../simulator/openai-compatible-server';
import { demoResponder, MATH_BUG, STRINGS_BUG } from './demo-responder';
import { DEMO_PREFIX, DemoOverall, DemoTaskRow, formatUsageReport } from './demo-report';
import { copyAsRepo } from './git-init';

/** The bundled sample repository (plain files; copied and git-initialised per run). */
export const SAMPLE_REPO_DIR = resolve(__dirname, '../../demo/sample-repo');
export const DEMO_MODEL = 'gpt-4o-mini';

interface DemoTaskSpec {
  label: string;
  bug_description: string;
  test_command: string;
  max_attempts: number;
  max_cost_usd?: number;
  /** What the demo shows with this task. */
  shows: string;
  expect: { status: string; attempts?: number; failure_reason?: string };
}

const TASKS: DemoTaskSpec[] = [
  {
    label: 'fix-average',
    bug_description: MATH_BUG,
    test_command: 'node test/math.test.js',
    max_attempts: 3,
    shows: 'a correct diff on the first attempt',
    expect: { status: 'succeeded', attempts: 1 },
  },
  {
    label: 'fix-slugify',
    bug_description: STRINGS_BUG,
    test_command: 'node test/strings.test.js',
    max_attempts: 3,
    shows: 'a wrong diff first (tests still fail), then a correct one: a retry',
    expect: { status: 'succeeded', attempts: 2 },
  },
  {
    label: 'tiny-budget',
    bug_description: STRINGS_BUG,
    test_command: 'node test/strings.test.js',
    max_attempts: 3,
    max_cost_usd: 0.0001,
    shows: 'a budget of $0.0001, too small for one call: refused before the model is called',
    expect: { status: 'failed', failure_reason: 'budget_exceeded' },
  },
];

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

export interface DemoOptions {
  /** Port of the service; 0 = any free port. Default: PORT or 0. */
  port?: number;
  /** Where output lines go (each already prefixed). Default: stdout. */
  print?: (line: string) => void;
  /** Longest wait for all tasks. */
  timeoutMs?: number;
  /**
   * Leave the service and the simulator running with the demo's data after the report
   * (`npm run demo -- --keep`) and print the URLs to explore; `DemoResult.kept.stop` ends them.
   */
  keep?: boolean;
}

export interface DemoResult {
  ok: boolean;
  rows: DemoTaskRow[];
  overall: DemoOverall;
  /** Problems found (a task that did not end as expected). */
  problems: string[];
  /** With `keep`: the service's base URL, and what stops the service and simulator and removes the data. */
  kept?: { baseUrl: string; stop(): Promise<void> };
}

/** Nest's log lines, labelled like every other line of the demo; only warnings and errors. */
class DemoLogger implements LoggerService {
  constructor(private readonly say: (line: string) => void) {}
  log(): void {}
  warn(message: unknown, context?: string): void {
    this.say(`service warning${context ? ` [${context}]` : ''}: ${String(message)}`);
  }
  error(message: unknown, ...rest: unknown[]): void {
    const context = typeof rest.at(-1) === 'string' ? ` [${String(rest.at(-1))}]` : '';
    this.say(`service error${context}: ${String(message)}`);
  }
}

export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  const out = opts.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const say = (text = '') => text.split('\n').forEach((l) => out(l ? `${DEMO_PREFIX} ${l}` : DEMO_PREFIX));
  const scratch = await mkdtemp(join(tmpdir(), 'asa-demo-'));
  // The workspaces are made in here: a sandboxed test command's user (uid 65534 when the demo
  // runs as root) must be able to pass through this folder to reach its own.
  await chmod(scratch, 0o711);
  let sim: SimulatorHandle | undefined;
  let app: NestFastifyApplication | undefined;
  let restoreEnv: (() => void) | undefined;
  let kept = false;
  const cleanUp = async () => {
    await app?.close();
    await sim?.close();
    restoreEnv?.();
    await rm(scratch, { recursive: true, force: true });
  };
  try {
    say('asa-backend offline demo. The LLM is SIMULATED: a local OpenAI-compatible server with canned answers');
    say('for the bundled sample repository. No API key, no network, no real model is used.');
    say();

    sim = await startOpenAiCompatibleServer({ respond: demoResponder });
    say(`simulated LLM endpoint: ${sim.baseUrl}`);

    const repoDir = join(scratch, 'sample-repo');
    await copyAsRepo(SAMPLE_REPO_DIR, repoDir);
    say(`sample repository (two bugs, two failing tests): ${repoDir}`);

    // An empty keys file: the demo's service is unauthenticated (on 127.0.0.1) whatever keys the checkout has.
    writeFileSync(join(scratch, 'no-api-keys.json'), '{ "keys": [] }\n');
    restoreEnv = applyDemoEnv({
      DATABASE_URL: `sqlite:${join(scratch, 'demo.db')}`,
      OPENAI_BASE_URL: sim.baseUrl,
      OPENAI_API_KEY: 'sk-simulated-demo-not-a-real-key',
      OPENAI_MAX_RETRIES: '0',
      API_KEYS_FILE: join(scratch, 'no-api-keys.json'),
      ENABLE_OPENTELEMETRY: 'false',
      TASK_WORKSPACE_DIR: join(scratch, 'workspaces'),
      TASK_REPO_URL_SCHEMES: 'file,local',
      TASK_POLL_INTERVAL_MS: '200',
      TASK_TEST_TIMEOUT_MS: '60000',
      TASK_DEFAULT_MODEL: DEMO_MODEL,
    });
    // Loaded only now: the configuration is read (and validated) when the module loads.
    const { NestFactory } = await import('@nestjs/core');
    const { AppModule } = await import('../app.module');
    const { createHttpAdapter, setupApp } = await import('../setup-app');
    app = await NestFactory.create<NestFastifyApplication>(AppModule, createHttpAdapter(), { logger: new DemoLogger(say), abortOnError: false });
    // The demo's own signal handlers close the app (with --keep); Nest's would close it a second time.
    setupApp(app, { shutdownOnSignals: false });
    await app.listen(opts.port ?? demoPort(), '127.0.0.1');
    const base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
    say(`service (the real AppModule, SQLite at ${join(scratch, 'demo.db')}): ${base}`);
    say();

    const api = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: body ? { 'content-type': 'application/json' } : {},
        body: body ? JSON.stringify(body) : undefined,
      });
      const json = (await res.json()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      if (!res.ok) throw Object.assign(new Error(`${method} ${path} -> ${res.status}: ${json.message ?? JSON.stringify(json)}`), { status: res.status });
      return json;
    };
    // A task that never reached the model has no usage: the API answers 404, the report shows zeros.
    const taskUsage = (id: string) =>
      api('GET', `/api/v1/usage/task/${id}`).catch((err: { status?: number }) => {
        if (err.status === 404) return { total_requests: 0, total_tokens: 0, total_cost_usd: 0 };
        throw err;
      });

    const ids: string[] = [];
    for (const t of TASKS) {
      const submitted = await api('POST', '/api/v1/task/submit', {
        repo_url: repoDir,
        bug_description: t.bug_description,
        test_command: t.test_command,
        model: DEMO_MODEL,
        max_attempts: t.max_attempts,
        ...(t.max_cost_usd !== undefined ? { max_cost_usd: t.max_cost_usd } : {}),
      });
      ids.push(submitted.task_id);
      say(`POST /api/v1/task/submit  ${t.label}: ${t.shows}`);
      say(`  -> 202 task_id=${submitted.task_id} status=${submitted.status}`);
    }
    say();
    say('waiting for the tasks (clone, run the failing test, ask the simulated LLM, git apply, run the test)...');

    const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
    const final: Record<string, any>[] = []; // eslint-disable-line @typescript-eslint/no-explicit-any
    for (const [i, id] of ids.entries()) {
      let task = await api('GET', `/api/v1/task/${id}`);
      while (!TERMINAL.has(task.status)) {
        if (Date.now() > deadline) throw new Error(`task ${TASKS[i].label} did not finish in time (status ${task.status})`);
        await new Promise((r) => setTimeout(r, 200));
        task = await api('GET', `/api/v1/task/${id}`);
      }
      final.push(task);
      say(
        `GET /api/v1/task/${id}  ${TASKS[i].label}: ${task.status} after ${task.attempts} attempt(s)` +
          (task.failure_reason ? `, reason ${task.failure_reason}` : ''),
      );
    }
    const fixed = final.find((t) => t.status === 'succeeded' && t.patch);
    if (fixed) {
      say();
      say('the patch of fix-average (written by the SIMULATED LLM, applied with git apply, tests passed):');
      say(String(fixed.patch).trimEnd());
    }

    say();
    // Usage records reach the database in the background; wait until each task's calls are there.
    const rows: DemoTaskRow[] = [];
    for (const [i, task] of final.entries()) {
      let usage = await taskUsage(task.task_id);
      const expectedCalls = TASKS[i].expect.failure_reason === 'budget_exceeded' ? 0 : task.attempts;
      while (Number(usage.total_requests) < expectedCalls && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        usage = await taskUsage(task.task_id);
      }
      rows.push({
        label: TASKS[i].label,
        taskId: task.task_id,
        status: task.status,
        attempts: task.attempts,
        failureReason: task.failure_reason ?? null,
        calls: Number(usage.total_requests),
        tokens: Number(usage.total_tokens),
        costUsd: Number(usage.total_cost_usd),
      });
    }
    const overallUsage = await api('GET', '/api/v1/usage/overall?days=1');
    const taskMetrics = await api('GET', '/api/v1/usage/metrics/tasks?days=1').catch(() => null);
    const overall: DemoOverall = {
      requests: Number(overallUsage.total_requests),
      tokens: Number(overallUsage.total_tokens),
      costUsd: Number(overallUsage.total_cost_usd),
      taskSuccessRatePercent:
        typeof taskMetrics?.success_rate_percent === 'number'
          ? taskMetrics.success_rate_percent
          : typeof overallUsage.success_rate_percent === 'number'
            ? overallUsage.success_rate_percent
            : null,
    };
    formatUsageReport(rows, overall, DEMO_MODEL).forEach((l) => say(l));

    const problems: string[] = [];
    for (const [i, spec] of TASKS.entries()) {
      const row = rows[i];
      if (row.status !== spec.expect.status) problems.push(`${spec.label}: expected ${spec.expect.status}, got ${row.status}`);
      if (spec.expect.attempts !== undefined && row.attempts !== spec.expect.attempts) {
        problems.push(`${spec.label}: expected ${spec.expect.attempts} attempt(s), got ${row.attempts}`);
      }
      if (spec.expect.failure_reason && row.failureReason !== spec.expect.failure_reason) {
        problems.push(`${spec.label}: expected reason ${spec.expect.failure_reason}, got ${row.failureReason}`);
      }
    }
    say();
    if (problems.length === 0) say('demo finished as expected. Every LLM answer above was SIMULATED.');
    else problems.forEach((p) => say(`UNEXPECTED: ${p}`));
    const result: DemoResult = { ok: problems.length === 0, rows, overall, problems };
    if (!opts.keep) {
      say(`explore the same API with a real model: set OPENAI_API_KEY, start the service (npm start), open /docs.`);
      say('or run the demo with --keep (npm run demo -- --keep) to explore its service and data.');
      return result;
    }
    say();
    // The dashboard is served from its build output (npm run build), which a run from the sources does not have.
    const dashboard = await fetch(`${base}/dashboard`).then((r) => r.ok, () => false);
    exploreLines(base, sim.baseUrl, rows, scratch, dashboard).forEach((l) => say(l));
    kept = true;
    return { ...result, kept: { baseUrl: base, stop: cleanUp } };
  } finally {
    if (!kept) await cleanUp();
  }
}

/** What to open while a kept demo runs. */
function exploreLines(base: string, simulatorUrl: string, rows: DemoTaskRow[], scratch: string, dashboard: boolean): string[] {
  const fixed = rows.find((r) => r.status === 'succeeded') ?? rows[0];
  return [
    'the service keeps running with the demo\'s data (--keep). Explore it:',
    `  API docs (try every endpoint):   ${base}/docs`,
    `  tasks:                           ${base}/api/v1/tasks`,
    `  one task:                        ${base}/api/v1/task/${fixed.taskId}`,
    `  its LLM calls, by model:         ${base}/api/v1/usage/task/${fixed.taskId}`,
    `  usage today:                     ${base}/api/v1/usage/overall?days=1`,
    `  task metrics:                    ${base}/api/v1/usage/metrics/tasks?days=1`,
    `  Prometheus metrics:              ${base}/metrics`,
    dashboard
      ? `  dashboard:                       ${base}/dashboard`
      : '  dashboard:                       not served by the demo, which runs from the sources; `npm run build`, then `npm start` serves it at /dashboard',
    `submit your own task (against the same SIMULATED model at ${simulatorUrl}):`,
    `  curl -X POST ${base}/api/v1/task/submit -H 'Content-Type: application/json' -d '${JSON.stringify({ repo_url: join(scratch, 'sample-repo'), bug_description: MATH_BUG, test_command: 'node test/math.test.js' })}'`,
    `stop with Ctrl-C (or SIGTERM): the service, the simulator and the demo's data (${scratch}) go away.`,
  ];
}

if (require.main === module) {
  const fail = (err: unknown) => {
    process.stderr.write(`${DEMO_PREFIX} demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  };
  let keep = false;
  try {
    keep = parseArgs({ options: { keep: { type: 'boolean' } }, strict: true, allowPositionals: false }).values.keep === true;
  } catch (err) {
    fail(new Error(`${(err as Error).message}; usage: npm run demo [-- --keep]`));
  }
  runDemo({ keep })
    .then((r) => {
      if (!r.kept) process.exit(r.ok ? 0 : 1);
      const stop = () => void r.kept!.stop().then(() => process.exit(r.ok ? 0 : 1), fail);
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    })
    .catch(fail);
}
