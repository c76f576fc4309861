import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { createTestApp, TestApp } from './support/create-app';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';
import { sandboxReachableTempDir } from './support/scratch';
import { ADMIN_KEY, ALICE_KEY, bearer, createBuggyRepo, isFinal, waitForTask, writeApiKeys } from './support/tasks';
import { usageRecord } from './support/usage-records';

const EXAMPLE_NOTIFIER = resolve(__dirname, '../examples/jsonl-alert-notifier.js');

interface PluginJson {
  kind: string;
  name: string | null;
  source: string;
  module: string | null;
  api_version: string | null;
  state: string;
  detail: string | null;
  queue_depth: number | null;
  records_written: number;
  errors: number;
  last_error: { message: string; at: string } | null;
}

async function pluginsOf(t: TestApp): Promise<PluginJson[]> {
  const res = await t.app.inject({ method: 'GET', url: '/api/v1/plugins', headers: bearer(ADMIN_KEY) });
  expect(res.statusCode).toBe(200);
  expect(res.json().sdk_api_version).toBe('1.1.0');
  return res.json().plugins;
}

const find = (list: PluginJson[], kind: string, name: string | null, module?: string) =>
  list.find((p) => p.kind === kind && p.name === name && (module === undefined || p.module === module));

describe('GET /api/v1/plugins and the isolation of plugins at run time', () => {
  let dir: string;
  let t: TestApp | undefined;
  const admin = bearer(ADMIN_KEY);
  beforeAll(() => {
    dir = sandboxReachableTempDir('asa-plugins-api-');
  });
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const plugin = (file: string, source: string) => {
    writeFileSync(join(dir, file), source);
    return join(dir, file);
  };

  it('lists built-ins and loaded plugins of every kind from one registry, with options and optional from the plugins file; admin keys only', async () => {
    const sink = plugin('count-sink.js', 'exports.apiVersion = "1.0.0"; exports.createUsageSink = (o) => ({ name: o.name, async write() {} });');
    const agent = plugin('noop-agent.js', 'exports.apiVersion = "1.0.0"; exports.createTaskAgent = () => ({ name: "noop", async run() { return { outcome: "failed", reason: "no_patch", attempts: 0 }; } });');
    const pluginsFile = join(dir, 'plugins.json');
    writeFileSync(
      pluginsFile,
      JSON.stringify({
        plugins: {
          [sink]: { options: { name: 'counter' } },
          [EXAMPLE_NOTIFIER]: { options: { name: 'ops-log', file: join(dir, 'alerts.jsonl') } },
          './not/installed/destination.js': { optional: true },
        },
      }),
    );
    t = await createTestApp({
      env: {
        API_KEYS_FILE: writeApiKeys(dir),
        PLUGINS_FILE: pluginsFile,
        USAGE_SINK_PLUGINS: sink,
        ALERT_NOTIFIER_PLUGINS: EXAMPLE_NOTIFIER,
        BILLING_EXPORT_DESTINATION_PLUGINS: './not/installed/destination.js',
        TASK_AGENT_PLUGINS: agent,
      },
    });
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/plugins' })).statusCode).toBe(401);
    const asUser = await t.app.inject({ method: 'GET', url: '/api/v1/plugins', headers: bearer(ALICE_KEY) });
    expect(asUser.statusCode).toBe(403);
    const unknownParam = await t.app.inject({ method: 'GET', url: '/api/v1/plugins?kind=sink', headers: bearer(ADMIN_KEY) });
    expect(unknownParam.statusCode).toBe(400);
    expect(unknownParam.json().message).toMatch(/kind/);

    const list = await pluginsOf(t);
    const builtin = { source: 'builtin', module: null, api_version: '1.1.0', detail: null, last_error: null, errors: 0 };
    expect(find(list, 'sink', 'database')).toMatchObject({ ...builtin, state: 'active', queue_depth: 0, records_written: 0 });
    expect(find(list, 'sink', 'prometheus')).toMatchObject({ ...builtin, state: 'active', queue_depth: 0 });
    // Its options came from the plugins file: the factory named it.
    expect(find(list, 'sink', 'counter')).toMatchObject({ source: 'path', module: sink, api_version: '1.0.0', state: 'active', queue_depth: 0 });
    for (const name of ['slack', 'email', 'alertmanager', 'webhook']) {
      expect(find(list, 'notifier', name)).toMatchObject({ ...builtin, state: 'disabled', detail: expect.stringMatching(/not configured/), queue_depth: null });
    }
    expect(find(list, 'notifier', 'ops-log')).toMatchObject({ source: 'path', module: EXAMPLE_NOTIFIER, api_version: '1.0.0', state: 'active' });
    expect(find(list, 'destination', 'local')).toMatchObject({ ...builtin, state: 'active' });
    expect(find(list, 'destination', null, './not/installed/destination.js')).toMatchObject({
      source: 'path',
      state: 'skipped',
      detail: `there is no module at ${resolve('./not/installed/destination.js')}`,
    });
    expect(find(list, 'agent', 'bug-fix')).toMatchObject({ ...builtin, state: 'active' });
    expect(find(list, 'agent', 'noop')).toMatchObject({ source: 'path', module: agent, state: 'active' });
    expect(list.filter((p) => p.kind === 'destination').map((p) => p.name)).toEqual(['local', null]);

    const doc = (await t.app.inject({ method: 'GET', url: '/docs-json', headers: admin })).json();
    expect(doc.paths['/api/v1/plugins'].get.responses['200'].content['application/json'].schema.$ref).toBe('#/components/schemas/PluginListDto');
    expect(doc.paths['/api/v1/plugins'].get.responses['403']).toBeDefined();
    expect(Object.keys(doc.components.schemas.PluginDto.properties)).toEqual(
      expect.arrayContaining(['kind', 'name', 'source', 'api_version', 'state', 'queue_depth', 'records_written', 'errors', 'last_error']),
    );
  });

  it('a sink, notifier, destination or agent that throws or hangs stops neither usage recording nor the service, and is counted', async () => {
    await runtimeIsolation(dir, {}, (app) => (t = app));
  });

  it('an agent whose run() never settles fails its task at TASK_RUN_TIMEOUT_MS and frees its worker slot; one that stops when told fails it too', async () => {
    const agents = [
      plugin('hanging-agent.js', 'exports.apiVersion = "1.0.0"; exports.createTaskAgent = () => ({ name: "hangs", run: () => new Promise(() => {}) });'),
      plugin(
        'polite-agent.js',
        'exports.apiVersion = "1.0.0"; exports.createTaskAgent = () => ({ name: "polite", run: (ctx) => new Promise((done) => ctx.signal.addEventListener("abort", () => done({ outcome: "failed", reason: "stopped", attempts: 1 }))) });',
      ),
      plugin('quick-agent.js', 'exports.apiVersion = "1.0.0"; exports.createTaskAgent = () => ({ name: "quick", async run() { return { outcome: "failed", reason: "no_patch", attempts: 1 }; } });'),
    ];
    t = await createTestApp({
      env: {
        API_KEYS_FILE: writeApiKeys(dir),
        TASK_AGENT_PLUGINS: agents.join(','),
        TASK_RUN_TIMEOUT_MS: '500',
        TASK_CONCURRENCY: '1', // one slot: the tasks after the hanging one run only if it is freed
        TASK_POLL_INTERVAL_MS: '50',
        TASK_WORKSPACE_DIR: join(dir, 'ws-deadline'),
      },
    });
    const app = t.app;
    const repo = createBuggyRepo(dir, 'repo-deadline');
    const submit = async (agent: string) => {
      const res = await app.inject({ method: 'POST', url: '/api/v1/task/submit', headers: admin, payload: { repo_url: repo.path, bug_description: 'b', test_command: repo.testCommand, agent } });
      expect(res.statusCode, res.body).toBe(202);
      return res.json().task_id as string;
    };
    const ids = { hangs: await submit('hangs'), polite: await submit('polite'), quick: await submit('quick') };
    const wait = (id: string) => waitForTask(app, id, isFinal, { headers: admin, timeoutMs: 30_000 });

    const hung = await wait(ids.hangs);
    expect(hung).toMatchObject({ status: 'failed', failure_reason: 'timeout' });
    expect(hung.failure_detail).toBe(
      'the agent "hangs" did not finish within TASK_RUN_TIMEOUT_MS (500 ms); the run was stopped; the agent did not stop when told to and was left behind',
    );
    expect(await wait(ids.polite)).toMatchObject({
      status: 'failed',
      failure_reason: 'timeout',
      failure_detail: 'the agent "polite" did not finish within TASK_RUN_TIMEOUT_MS (500 ms); the run was stopped',
      attempts: 1,
    });
    expect(await wait(ids.quick)).toMatchObject({ status: 'failed', failure_reason: 'no_patch' });

    const list = await pluginsOf(t);
    expect(find(list, 'agent', 'hangs')).toMatchObject({ state: 'failing', last_error: { message: `task ${ids.hangs}: run() did not return 5000 ms after its signal was aborted (timeout)` } });
    expect(find(list, 'agent', 'quick')).toMatchObject({ state: 'active' });
  });

  it('a bad plugins file stops the start naming the field; a plugin named in no variable is only warned about', async () => {
    const bad = join(dir, 'bad-plugins.json');
    writeFileSync(bad, JSON.stringify({ plugins: { './x.js': { optional: 'yes' } } }));
    await expect(createTestApp({ env: { PLUGINS_FILE: bad } })).rejects.toThrow(`Plugins file ${bad}: plugins["./x.js"].optional must be true or false`);
    await expect(createTestApp({ env: { PLUGINS_FILE: join(dir, 'absent.json') } })).rejects.toThrow(/absent\.json: the file does not exist \(PLUGINS_FILE names it\)/);
    const unused = join(dir, 'unused-plugins.json');
    writeFileSync(unused, JSON.stringify({ plugins: { './never-listed.js': { options: {} } } }));
    t = await createTestApp({ env: { PLUGINS_FILE: unused } });
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/plugins' })).statusCode).toBe(200);
  });
});

describePostgres('the isolation of plugins at run time', () => {
  let dir: string;
  let db: ScratchDatabase;
  let t: TestApp | undefined;
  beforeAll(async () => {
    dir = sandboxReachableTempDir('asa-plugins-api-pg-');
    db = await createScratchPostgres();
  });
  afterAll(async () => {
    await t?.close();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a sink, notifier, destination or agent that throws or hangs stops neither usage recording nor the service, and is counted', async () => {
    await runtimeIsolation(dir, { DATABASE_URL: db.url }, (app) => (t = app));
  });
});

describe('plugins of one kind share one name space', () => {
  it('refuses a plugin that takes a built-in\'s name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'asa-plugins-dup-'));
    try {
      writeFileSync(join(dir, 'db.js'), 'exports.createUsageSink = () => ({ name: "database", async write() {} });');
      await expect(createTestApp({ env: { USAGE_SINK_PLUGINS: join(dir, 'db.js') } })).rejects.toThrow('Two usage sinks are named "database"; usage sink names must be unique');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Broken plugins of every kind beside the built-ins: each failure is contained and counted.
 * `started` hands the app to the caller at once, so it is closed even when an assertion fails.
 */
async function runtimeIsolation(dir: string, env: Record<string, string>, started: (t: TestApp) => void): Promise<TestApp> {
  const admin = bearer(ADMIN_KEY);
  const plugin = (file: string, source: string) => {
    writeFileSync(join(dir, file), source);
    return join(dir, file);
  };
  const sinks = [
    plugin('throwing-sink.js', 'exports.createUsageSink = () => ({ name: "warehouse", async write() { throw new Error("warehouse down"); } });'),
    plugin('hanging-sink.js', 'exports.createUsageSink = () => ({ name: "stuck", policy: { writeTimeoutMs: 200 }, write: () => new Promise(() => {}) });'),
  ];
  const notifiers = [
    plugin('throwing-notifier.js', 'exports.createAlertNotifier = () => ({ name: "pager", async send() { throw new Error("pager refused"); } });'),
    plugin('hanging-notifier.js', 'exports.createAlertNotifier = () => ({ name: "slow-pager", send: () => new Promise(() => {}) });'),
  ];
  const destinations = [
    plugin('throwing-destination.js', 'exports.createExportDestination = () => ({ name: "bucket", async deliver() { throw new Error("bucket unreachable"); } });'),
    plugin('hanging-destination.js', 'exports.createExportDestination = () => ({ name: "slow-bucket", deliver: () => new Promise(() => {}) });'),
  ];
  const agent = plugin('throwing-agent.js', 'exports.createTaskAgent = () => ({ name: "explodes", async run() { throw new Error("agent bug"); } });');
  const t = await createTestApp({
    env: {
      ...env,
      API_KEYS_FILE: writeApiKeys(dir),
      USAGE_SINK_PLUGINS: sinks.join(','),
      ALERT_NOTIFIER_PLUGINS: notifiers.join(','),
      ALERT_DELIVERY_TIMEOUT_MS: '300',
      BILLING_EXPORT_DESTINATION_PLUGINS: destinations.join(','),
      BILLING_EXPORT_DELIVERY_TIMEOUT_MS: '300',
      TASK_AGENT_PLUGINS: agent,
      TASK_WORKSPACE_DIR: join(dir, 'ws'),
    },
  });
  started(t);

  // Usage: every record reaches the database while the two broken sinks fail beside it.
  const recorder = t.app.get(UsageRecorder);
  const records = [1, 2, 3].map((i) => usageRecord({ userId: 'carol', costNanos: 1_000 * i, createdAtMs: Date.UTC(2026, 10, 25, 12, i) }));
  for (const r of records) await recorder.record(r);
  await recorder.flush();
  const usage = await t.app.inject({ method: 'GET', url: '/api/v1/usage/user/carol', headers: admin });
  expect(usage.json()).toMatchObject({ total_requests: 3, total_cost_usd_exact: '0.000006000' });

  // Alerts: the test notification reports both failures; nothing else is affected.
  const test = await t.app.inject({ method: 'POST', url: '/api/v1/alerts/test', headers: admin });
  expect(test.statusCode).toBe(200);
  expect(test.json().results).toEqual([
    expect.objectContaining({ notifier: 'pager', ok: false, error: 'pager refused' }),
    expect.objectContaining({ notifier: 'slow-pager', ok: false, error: expect.stringMatching(/no answer within 300 ms/) }),
  ]);

  // Billing: the export is written and delivered locally; each broken destination is stored as failed.
  const exp = await t.app.inject({ method: 'POST', url: '/api/v1/billing/exports', headers: admin, payload: { from: '2026-11-25', to: '2026-11-26' } });
  expect(exp.statusCode).toBe(201);
  expect(exp.json().destinations).toEqual([
    expect.objectContaining({ destination: 'local', status: 'delivered' }),
    expect.objectContaining({ destination: 'bucket', status: 'failed', error: 'bucket unreachable' }),
    expect.objectContaining({ destination: 'slow-bucket', status: 'failed', error: 'no answer within 300 ms (BILLING_EXPORT_DELIVERY_TIMEOUT_MS)' }),
  ]);

  // Tasks: an agent that throws fails its task, not the worker.
  const repo = createBuggyRepo(dir, 'repo-throwing-agent');
  const submitted = await t.app.inject({
    method: 'POST',
    url: '/api/v1/task/submit',
    headers: admin,
    payload: { repo_url: repo.path, bug_description: 'b', test_command: repo.testCommand, agent: 'explodes' },
  });
  expect(submitted.statusCode).toBe(202);
  const task = await waitForTask(t.app, submitted.json().task_id, isFinal, { headers: admin });
  expect(task).toMatchObject({ status: 'failed', failure_reason: 'agent_error' });
  const unknown = await t.app.inject({
    method: 'POST',
    url: '/api/v1/task/submit',
    headers: admin,
    payload: { repo_url: repo.path, bug_description: 'b', test_command: repo.testCommand, agent: 'nobody' },
  });
  expect(unknown.statusCode).toBe(400);
  expect(unknown.json().message).toMatch(/agent must be one of the registered task agents \(bug-fix, explodes\); there is none named "nobody"/);

  const list = await pluginsOf(t);
  const failing = (kind: string, name: string, message: RegExp | string) =>
    expect(find(list, kind, name)).toMatchObject({ state: 'failing', records_written: 0, last_error: { message, at: expect.any(String) } });
  expect(find(list, 'sink', 'database')).toMatchObject({ state: 'active', records_written: 3, errors: 0, queue_depth: 0 });
  failing('sink', 'warehouse', 'warehouse down');
  failing('sink', 'stuck', 'sink "stuck" did not finish a write within 200 ms');
  expect(find(list, 'sink', 'warehouse')!.errors).toBeGreaterThanOrEqual(1);
  expect(find(list, 'sink', 'warehouse')!.queue_depth).toBe(0);
  failing('notifier', 'pager', 'pager refused');
  failing('notifier', 'slow-pager', expect.stringMatching(/no answer within 300 ms/) as unknown as string);
  expect(find(list, 'notifier', 'pager')!.errors).toBe(1);
  expect(find(list, 'destination', 'local')).toMatchObject({ state: 'active', records_written: 1, errors: 0 });
  failing('destination', 'bucket', 'bucket unreachable');
  failing('destination', 'slow-bucket', 'no answer within 300 ms (BILLING_EXPORT_DELIVERY_TIMEOUT_MS)');
  failing('agent', 'explodes', expect.stringMatching(new RegExp(`^task ${task.task_id}: agent bug \\(reference [0-9a-f-]+ in the server log\\)$`)) as unknown as string);
  expect(new Date(find(list, 'sink', 'warehouse')!.last_error!.at).getTime()).toBeGreaterThan(Date.now() - 60_000);

  // The service still answers and records.
  await recorder.record(usageRecord({ userId: 'carol', costNanos: 4_000 }));
  await recorder.flush();
  expect((await t.app.inject({ method: 'GET', url: '/api/v1/usage/user/carol', headers: admin })).json().total_requests).toBe(4);
    return t;
}
