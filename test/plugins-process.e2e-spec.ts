import { parse } from 'csv-parse/sync';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FakeOpenAi } from './fixtures/fake-openai';
import { eventually } from './support/notifier-receivers';
import { sandboxReachableTempDir } from './support/scratch';
import { ensureSdkBuilt } from './support/sdk-build';
import { buildService, freePort, startService, taskServiceEnv, waitForHttp } from './support/service-process';
import { ADMIN_KEY, ALICE_KEY, createBuggyRepo, writeApiKeys } from './support/tasks';

const EXAMPLES = resolve(__dirname, '../examples');
const example = (file: string) => join(EXAMPLES, file);

/** The built service as an operator runs it (`node dist/main.js`), its plugins named in configuration. */
describe('plugins in the real service process', () => {
  let dir: string;
  let fake: FakeOpenAi;
  beforeAll(async () => {
    buildService();
    // The example sink requires asa-backend/sdk: what `npm run build` builds to dist/sdk.
    ensureSdkBuilt();
    fake = await FakeOpenAi.start({ defaultReply: { content: 'the bug is in add()', usage: { prompt_tokens: 41, completion_tokens: 7 } } });
  }, 300_000);
  beforeEach(() => {
    dir = sandboxReachableTempDir('asa-plugins-process-');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  afterAll(async () => {
    await fake?.close();
  });

  it('loads the example sink, notifier, destination and agent from the *_PLUGINS variables with options from config/plugins.json', async () => {
    const out = {
      usage: join(dir, 'out/usage.jsonl'),
      alerts: join(dir, 'out/alerts.jsonl'),
      copies: join(dir, 'out/copies'),
    };
    mkdirSync(join(dir, 'out'));
    mkdirSync(join(dir, 'config'));
    // The default plugins file (config/plugins.json in the working folder), keyed as the variables name the plugins.
    writeFileSync(
      join(dir, 'config/plugins.json'),
      JSON.stringify({
        plugins: {
          [example('jsonl-usage-sink.js')]: { options: { file: out.usage } },
          './plugins/not-installed-sink.js': { optional: true },
          [example('jsonl-alert-notifier.js')]: { options: { file: out.alerts } },
          [example('folder-export-destination.js')]: { options: { folder: out.copies } },
          [example('ask-once-agent.js')]: { options: { system: 'Find the bug.' } },
        },
      }),
    );
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const svc = startService({
      cwd: dir,
      env: {
        ...taskServiceEnv({ port, llmBaseUrl: fake.baseUrl, workspaceDir: join(dir, 'ws') }),
        API_KEYS_FILE: writeApiKeys(dir),
        USAGE_SINK_PLUGINS: `${example('jsonl-usage-sink.js')}, ./plugins/not-installed-sink.js`,
        ALERT_NOTIFIER_PLUGINS: example('jsonl-alert-notifier.js'),
        BILLING_EXPORT_DESTINATION_PLUGINS: example('folder-export-destination.js'),
        TASK_AGENT_PLUGINS: example('ask-once-agent.js'),
      },
    });
    const call = async (method: string, path: string, body?: unknown, key = ADMIN_KEY) => {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      const text = await res.text();
      return { status: res.status, text, json: () => JSON.parse(text) };
    };
    try {
      await waitForHttp(`${base}/health`, 60_000, svc);
      expect(svc.output()).toMatch(/Usage sink plugin "\.\/plugins\/not-installed-sink\.js" could not be loaded: there is no module at .*; it is optional, so the service starts without it/);

      const before = (await call('GET', '/api/v1/plugins')).json().plugins as { kind: string; name: string | null; source: string; state: string }[];
      expect(before.map((p) => [p.kind, p.name, p.source, p.state])).toEqual(
        expect.arrayContaining([
          ['sink', 'database', 'builtin', 'active'],
          ['sink', 'jsonl-file', 'path', 'active'],
          ['sink', null, 'path', 'skipped'],
          ['notifier', 'jsonl-file', 'path', 'active'],
          ['destination', 'local', 'builtin', 'active'],
          ['destination', 'folder-copy', 'path', 'active'],
          ['agent', 'bug-fix', 'builtin', 'active'],
          ['agent', 'ask-once', 'path', 'active'],
        ]),
      );
      expect((await call('GET', '/api/v1/plugins', undefined, ALICE_KEY)).status).toBe(403);

      // The agent plugin runs a task; its LLM call is recorded and reaches the sink plugin.
      const repo = createBuggyRepo(dir);
      const submitted = await call('POST', '/api/v1/task/submit', { repo_url: repo.path, bug_description: 'add subtracts', test_command: repo.testCommand, agent: 'ask-once' });
      expect(submitted.status).toBe(202);
      const taskId = submitted.json().task_id as string;
      const task = await eventually('the task to end', async () => {
        const t = (await call('GET', `/api/v1/task/${taskId}`)).json();
        return ['succeeded', 'failed', 'cancelled'].includes(t.status) ? t : undefined;
      });
      expect(task).toMatchObject({ agent: 'ask-once', status: 'failed', failure_reason: 'no_patch', failure_detail: 'The model says: the bug is in add()' });
      expect(fake.chatRequests().at(-1)!.body.messages[0]).toEqual({ role: 'system', content: 'Find the bug.' });

      const line = await eventually('the usage record in the sink plugin\'s file', () =>
        existsSync(out.usage) && readFileSync(out.usage, 'utf8').trim() ? (JSON.parse(readFileSync(out.usage, 'utf8').trim()) as Record<string, unknown>) : undefined,
      );
      // The serialized record is the usage API's own form: records.csv has the same columns and values.
      const csv = await call('GET', `/api/v1/usage/records.csv?from=2020-01-01&task_id=${taskId}`);
      const rows = parse(csv.text, { columns: true }) as Record<string, string>[];
      expect(rows).toHaveLength(1);
      expect(Object.keys(line)).toEqual(Object.keys(rows[0]));
      for (const [column, value] of Object.entries(line)) expect([column, value === null ? '' : String(value)]).toEqual([column, rows[0][column]]);
      expect(line).toMatchObject({ task_id: taskId, requested_model: 'gpt-4o-mini', input_tokens: 41, output_tokens: 7, status: 'success' });
      expect(line.cost_usd).toMatch(/^0\.\d{9}$/);
      const usage = (await call('GET', `/api/v1/usage/task/${taskId}`)).json();
      expect(usage.total_cost_usd_exact).toBe(line.cost_usd);

      // The notifier plugin: a test notification lands in its file (from its options).
      const test = await call('POST', '/api/v1/alerts/test');
      expect(test.json().results).toEqual([expect.objectContaining({ notifier: 'jsonl-file', ok: true })]);
      expect(JSON.parse(readFileSync(out.alerts, 'utf8').trim())).toMatchObject({ id: test.json().alert_id, kind: 'test' });

      // The destination plugin: the export is copied to its folder (from its options), checked by SHA-256.
      const today = new Date().toISOString().slice(0, 10);
      const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
      const exp = await call('POST', '/api/v1/billing/exports', { from: today, to: tomorrow });
      expect(exp.status).toBe(201);
      const copy = join(out.copies, exp.json().file_name);
      expect(exp.json().destinations).toEqual([
        expect.objectContaining({ destination: 'local', status: 'delivered' }),
        expect.objectContaining({ destination: 'folder-copy', status: 'delivered', location: copy, detail: { bytes: exp.json().bytes } }),
      ]);
      expect(createHash('sha256').update(readFileSync(copy)).digest('hex')).toBe(exp.json().sha256);

      const after = (await call('GET', '/api/v1/plugins')).json().plugins as { kind: string; name: string | null; records_written: number; errors: number }[];
      const written = (kind: string, name: string) => after.find((p) => p.kind === kind && p.name === name);
      expect(written('sink', 'jsonl-file')).toMatchObject({ records_written: 1, errors: 0 });
      expect(written('sink', 'database')).toMatchObject({ records_written: 1, errors: 0 });
      expect(written('notifier', 'jsonl-file')).toMatchObject({ records_written: 1, errors: 0 });
      expect(written('destination', 'folder-copy')).toMatchObject({ records_written: 1, errors: 0 });
      expect(written('agent', 'ask-once')).toMatchObject({ records_written: 1, errors: 0 });
    } finally {
      expect(await svc.stop('SIGTERM')).toEqual({ code: null, signal: 'SIGTERM' });
    }
  }, 120_000);

  /** Each broken plugin stops the start: exit code 1 and one plain line naming it, no stack trace. */
  const broken: { what: string; variable: string; file: string; source: string; env?: Record<string, string>; message: (path: string) => string }[] = [
    {
      what: 'cannot be found',
      variable: 'USAGE_SINK_PLUGINS',
      file: '',
      source: '',
      message: (p) => `Usage sink plugin "${p}" could not be loaded: there is no module at ${p}`,
    },
    {
      what: 'throws while its module loads',
      variable: 'ALERT_NOTIFIER_PLUGINS',
      file: 'throws-at-import.js',
      source: 'throw new Error("cannot reach the pager service");',
      message: (p) => `Alert notifier plugin "${p}" could not be loaded: cannot reach the pager service`,
    },
    {
      what: 'throws in its factory',
      variable: 'BILLING_EXPORT_DESTINATION_PLUGINS',
      file: 'throws.js',
      source: 'exports.createExportDestination = () => { throw new Error("S3_BUCKET is not set"); };',
      message: (p) => `Export destination plugin "${p}" could not be loaded: createExportDestination() threw: S3_BUCKET is not set`,
    },
    {
      what: 'hangs in its factory',
      variable: 'USAGE_SINK_PLUGINS',
      file: 'hangs.js',
      source: 'exports.createUsageSink = () => new Promise(() => {});',
      env: { PLUGIN_LOAD_TIMEOUT_MS: '500' },
      message: (p) => `Usage sink plugin "${p}" could not be loaded: createUsageSink() did not return within 500 ms`,
    },
    {
      what: 'declares an incompatible API version',
      variable: 'TASK_AGENT_PLUGINS',
      file: 'v2.js',
      source: 'exports.apiVersion = "2.0.0"; exports.createTaskAgent = () => ({ name: "v2", async run() {} });',
      message: (p) =>
        `Task agent plugin "${p}" could not be loaded: it needs plugin API 2.0.0; this service provides 1.1.0 (the same major version and a minor version no newer than 1.1 are needed)`,
    },
    {
      what: 'declares a newer minor version than the service',
      variable: 'USAGE_SINK_PLUGINS',
      file: 'v1-2.js',
      source: 'exports.apiVersion = "1.2.0"; exports.createUsageSink = () => ({ name: "new", async write() {} });',
      message: (p) => `Usage sink plugin "${p}" could not be loaded: it needs plugin API 1.2.0; this service provides 1.1.0 (the same major version and a minor version no newer than 1.1 are needed)`,
    },
    {
      what: 'lacks a method of its interface',
      variable: 'ALERT_NOTIFIER_PLUGINS',
      file: 'no-send.js',
      source: 'exports.apiVersion = "1.0.0"; exports.createAlertNotifier = () => ({ name: "mute" });',
      message: (p) => `Alert notifier plugin "${p}" could not be loaded: createAlertNotifier() did not return an object with name and send() ("mute" has no send())`,
    },
    {
      what: 'takes the name of a built-in',
      variable: 'USAGE_SINK_PLUGINS',
      file: 'database.js',
      source: 'exports.createUsageSink = () => ({ name: "database", async write() {} });',
      message: () => 'Two usage sinks are named "database"; usage sink names must be unique',
    },
  ];

  it.each(broken)('a plugin that $what stops the start with one plain line naming it', async ({ variable, file, source, env, message }) => {
    const path = join(dir, file || 'absent-plugin.js');
    if (file) writeFileSync(path, source);
    const svc = startService({ cwd: dir, env: { PORT: String(await freePort()), [variable]: path, ...env } });
    const { code } = await svc.exited;
    expect(code).toBe(1);
    const lines = svc.output().trim().split('\n');
    expect(lines.at(-1)).toBe(message(path));
    expect(lines.filter((l) => l.includes(message(path)))).toHaveLength(1);
    expect(svc.output()).not.toMatch(/^\s+at /m);
  }, 60_000);

  it('a bad config/plugins.json stops the start naming the field', async () => {
    mkdirSync(join(dir, 'config'));
    writeFileSync(join(dir, 'config/plugins.json'), JSON.stringify({ plugins: { './x.js': { options: [] } } }));
    const svc = startService({ cwd: dir, env: { PORT: String(await freePort()) } });
    expect((await svc.exited).code).toBe(1);
    expect(svc.output().trim().split('\n').at(-1)).toBe(`Plugins file ${join(dir, 'config/plugins.json')}: plugins["./x.js"].options must be an object`);
    expect(svc.output()).not.toMatch(/^\s+at /m);
  }, 60_000);
});
