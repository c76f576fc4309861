import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { FakeOpenAi } from './fixtures/fake-openai';
import { pidsRunning } from './support/processes';
import { buildService, freePort, ServiceProcess, startService, waitForHttp } from './support/service-process';
import { ADMIN_KEY, ALICE_KEY, bearer, BuggyRepo, createBuggyRepo, until, writeApiKeys } from './support/tasks';
import { sandboxReachableTempDir } from './support/scratch';

const SECRET_KEY = 'sk-sandbox-e2e-secret-7f3a9c1e5b';

/**
 * The sandbox of a task's test command, against the built service as a real process (its
 * environment holds the secrets, as in production), with real tasks submitted over HTTP and the
 * model played by the fake OpenAI server: what an adversarial test command can reach, and what is
 * left after the service is killed with SIGKILL.
 */
describe('task sandbox (real service process)', () => {
  let dir: string;
  let repo: BuggyRepo;
  let fake: FakeOpenAi;
  let keysFile: string;
  let workspaces: string;
  const running: ServiceProcess[] = [];

  beforeAll(async () => {
    buildService();
    dir = sandboxReachableTempDir('asa-sandbox-e2e-');
    repo = createBuggyRepo(dir);
    keysFile = writeApiKeys(dir);
    workspaces = join(dir, 'workspaces');
    fake = await FakeOpenAi.start({ defaultReply: { content: 'no idea' } });
  }, 300_000);
  afterAll(async () => {
    for (const svc of running) await svc.stop('SIGKILL');
    await fake?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const serviceEnv = (port: number, extra: Record<string, string> = {}) => ({
    PORT: String(port),
    DATABASE_URL: `sqlite:${join(dir, 'data', 'asa.db')}`,
    OPENAI_BASE_URL: fake.baseUrl,
    OPENAI_API_KEY: SECRET_KEY,
    OPENAI_MAX_RETRIES: '0',
    API_KEYS_FILE: keysFile,
    TASK_POLL_INTERVAL_MS: '100',
    TASK_WORKSPACE_DIR: workspaces,
    TASK_KILL_GRACE_MS: '300',
    ...extra,
  });
  async function start(extra: Record<string, string> = {}, port?: number) {
    port ??= await freePort();
    const svc = startService({ cwd: dir, env: serviceEnv(port, extra) });
    running.push(svc);
    const base = `http://127.0.0.1:${port}`;
    await waitForHttp(`${base}/health`, 60_000, svc);
    return { svc, base, port };
  }
  async function submit(base: string, key: string, testCommand: string) {
    const res = await fetch(`${base}/api/v1/task/submit`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...bearer(key) },
      body: JSON.stringify({ repo_url: repo.path, bug_description: 'add(2, 3) returns -1', test_command: testCommand, max_attempts: 1 }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  }
  async function finished(base: string, id: string) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const task = (await (await fetch(`${base}/api/v1/task/${id}`, { headers: bearer(ADMIN_KEY) })).json()) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      if (['succeeded', 'failed', 'cancelled'].includes(task.status)) return task;
      if (Date.now() > deadline) throw new Error(`task ${id} did not finish: ${JSON.stringify(task)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const workspacesNow = () => (existsSync(workspaces) ? readdirSync(workspaces).filter((n) => n.startsWith('asa-task-')) : []);
  const reachableFromHost = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });

  /** Everything an adversarial test command tries; each section ends in what it got. */
  const probeCommand = (o: { servicePid: number; servicePort: number; otherWorkspace: string }) =>
    [
      `conn() { node -e "const s = require('net').connect(Number(process.argv[1]), '127.0.0.1'); s.on('connect', () => { console.log('CONNECTED'); process.exit(0) }); s.on('error', (e) => { console.log('NO-CONNECTION', e.code); process.exit(0) })" "$1"; }`,
      'echo "== ppid-environ"; cat /proc/$PPID/environ | tr "\\0" "\\n"',
      'echo "== pid1-environ"; cat /proc/1/environ | tr "\\0" "\\n"',
      `echo "== service-environ"; cat /proc/${o.servicePid}/environ 2>&1 | head -c 300`,
      `echo "== database"; head -c 16 ${join(dir, 'data', 'asa.db')} 2>&1; ls ${join(dir, 'data')} 2>&1`,
      `echo "== service-folder"; ls ${dir} 2>&1`,
      `echo "== other-task"; ls ${o.otherWorkspace} 2>&1; cat ${join(o.otherWorkspace, 'repo', 'math.js')} 2>&1; cat ${join(o.otherWorkspace, 'home', 'secret-a.txt')} 2>&1`,
      `echo "== net-service"; conn ${o.servicePort}`,
      'echo "== net-postgres"; conn 5432',
      `echo "== net-model"; conn ${new URL(fake.baseUrl).port}`,
      'echo "== end"; exit 1',
    ].join('\n');
  const section = (out: string, name: string) => {
    const m = new RegExp(`== ${name}\\n([\\s\\S]*?)(?=\\n== )`).exec(out);
    if (!m) throw new Error(`no section ${name} in:\n${out}`);
    return m[1];
  };
  /** A task whose test command holds: its workspace is "another live task" for the probe. */
  async function holdingTask(base: string, marker: string) {
    const held = await submit(base, ADMIN_KEY, `echo holder-secret-A > $HOME/secret-a.txt; sleep ${marker}`);
    expect(held.status).toBe(202);
    await until(() => pidsRunning('sleep', marker).length === 1, 'holding task started', 30_000);
    const ws = workspacesNow().find((n) => n.includes(held.body.task_id));
    expect(ws).toBeDefined();
    return { id: held.body.task_id as string, workspace: join(workspaces, ws!) };
  }

  it('a test command cannot read the service environment, its database, another task, or open a connection', async () => {
    const { svc, base, port } = await start();
    try {
      expect(svc.output()).toMatch(/test commands and git apply run in a bubblewrap sandbox/);
      const other = await holdingTask(base, '838381');
      // The targets are really there and reachable from outside the sandbox.
      expect(existsSync(join(other.workspace, 'repo', 'math.js'))).toBe(true);
      expect(await reachableFromHost(port)).toBe(true);

      const r = await submit(base, ADMIN_KEY, probeCommand({ servicePid: svc.child.pid!, servicePort: port, otherWorkspace: other.workspace }));
      expect(r.status).toBe(202);
      const task = await finished(base, r.body.task_id);
      const out = task.test_output_tail as string;
      expect(out).toContain('== end');

      expect(out).not.toContain(SECRET_KEY);
      expect(out).not.toContain('DATABASE_URL');
      expect(out).not.toContain('OPENAI');
      // The sandbox's own processes show only the sandbox's allowlisted environment.
      for (const name of ['ppid-environ', 'pid1-environ']) {
        const vars = section(out, name).split('\n').filter((l) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(l)).map((l) => l.split('=')[0]);
        for (const v of vars) expect(['PATH', 'HOME', 'TMPDIR', 'TMP', 'TEMP', 'CI', 'NO_COLOR', 'FORCE_COLOR', 'GIT_TERMINAL_PROMPT', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE', 'LC_MESSAGES', 'TZ', 'TERM', 'SHELL', 'USER', 'LOGNAME']).toContain(v);
      }
      expect(section(out, 'service-environ')).toMatch(/No such file or directory/);
      expect(section(out, 'database')).toMatch(/No such file or directory/);
      expect(section(out, 'database')).not.toContain('SQLite format');
      // Of the service's folder only the path down to this task's own workspace exists (empty mount points).
      expect(section(out, 'service-folder').trim()).toBe('workspaces');
      expect(section(out, 'other-task')).toMatch(/No such file or directory/);
      expect(out).not.toContain('holder-secret-A');
      expect(out).not.toContain('function add');
      for (const net of ['net-service', 'net-postgres', 'net-model']) expect(section(out, net)).toMatch(/NO-CONNECTION (ECONNREFUSED|ENETUNREACH)/);
      expect(out).not.toContain('CONNECTED\n');

      await fetch(`${base}/api/v1/task/${other.id}/cancel`, { method: 'POST', headers: bearer(ADMIN_KEY) });
      await until(() => pidsRunning('sleep', '838381').length === 0, 'holding task stopped', 10_000);
    } finally {
      await svc.stop('SIGTERM');
    }
  }, 120_000);

  it('TASK_SANDBOX=none: a warning at start, user keys refused with 403, and the same probe does read the secret', async () => {
    const { svc, base, port } = await start({ TASK_SANDBOX: 'none' });
    try {
      expect(svc.output()).toMatch(/WARN.*TASK_SANDBOX=none: test commands and git apply run WITHOUT isolation/);
      const refused = await submit(base, ALICE_KEY, 'true');
      expect(refused.status).toBe(403);
      expect(refused.body).toMatchObject({ code: 'TASK_SANDBOX_REQUIRED' });
      expect(refused.body.message).toMatch(/without a sandbox \(TASK_SANDBOX=none\).*user-scoped API keys may not submit tasks/);

      // An admin may still submit; what the sandbox prevents is then within reach (the probe can fail).
      const other = await holdingTask(base, '848481');
      const r = await submit(base, ADMIN_KEY, probeCommand({ servicePid: svc.child.pid!, servicePort: port, otherWorkspace: other.workspace }));
      expect(r.status).toBe(202);
      const out = (await finished(base, r.body.task_id)).test_output_tail as string;
      expect(section(out, 'ppid-environ')).toContain(SECRET_KEY);
      expect(section(out, 'database')).toContain('SQLite format');
      expect(section(out, 'net-service')).toContain('CONNECTED');
      await fetch(`${base}/api/v1/task/${other.id}/cancel`, { method: 'POST', headers: bearer(ADMIN_KEY) });
    } finally {
      await svc.stop('SIGTERM');
    }
  }, 120_000);

  it('SIGKILL of the service takes its sandboxed test command with it; the restart removes the orphan workspace', async () => {
    const first = await start();
    const r = await submit(first.base, ADMIN_KEY, 'sleep 858581 & setsid sleep 858582 & nohup sleep 858583 >/dev/null 2>&1 & (setsid sh -c "sleep 858584" &); sleep 858585');
    const sleeps = ['858581', '858582', '858583', '858584', '858585'];
    await until(() => sleeps.every((n) => pidsRunning('sleep', n).length === 1), 'test command started', 30_000);
    const [ws] = workspacesNow().filter((n) => n.includes(r.body.task_id));
    expect(ws).toBeDefined();

    first.svc.child.kill('SIGKILL');
    await first.svc.exited;
    await until(() => sleeps.every((n) => pidsRunning('sleep', n).length === 0), 'every process of the test command gone', 10_000);
    expect(existsSync(join(workspaces, ws))).toBe(true); // the crash left it

    const second = await start({}, first.port);
    try {
      expect(existsSync(join(workspaces, ws))).toBe(false);
      expect(second.svc.output()).toMatch(/removed 1 workspace\(s\) left by a stopped process/);
      const task = (await (await fetch(`${second.base}/api/v1/task/${r.body.task_id}`, { headers: bearer(ADMIN_KEY) })).json()) as { status: string; failure_reason: string };
      expect(task).toMatchObject({ status: 'failed', failure_reason: 'interrupted' });
    } finally {
      await second.svc.stop('SIGTERM');
    }
  }, 120_000);

  it('TASK_SANDBOX=none: a test command survives SIGKILL of the service, and the restart kills it and removes its workspace', async () => {
    const first = await start({ TASK_SANDBOX: 'none' });
    await submit(first.base, ADMIN_KEY, 'sleep 868681 & sleep 868682');
    await until(() => pidsRunning('sleep', '868682').length === 1, 'test command started', 30_000);
    first.svc.child.kill('SIGKILL');
    await first.svc.exited;
    await new Promise((r) => setTimeout(r, 500));
    // Without the sandbox nothing ties the command to the service: this is what the restart cleans up.
    expect(pidsRunning('sleep', '868681')).toHaveLength(1);
    expect(pidsRunning('sleep', '868682')).toHaveLength(1);
    expect(workspacesNow()).toHaveLength(1);

    const second = await start({ TASK_SANDBOX: 'none' }, first.port);
    try {
      await until(() => pidsRunning('sleep', '868681').length + pidsRunning('sleep', '868682').length === 0, 'leftover test processes killed', 10_000);
      expect(workspacesNow()).toEqual([]);
      expect(second.svc.output()).toMatch(/removed 1 workspace\(s\) left by a stopped process.*killed \d+ leftover test process/);
    } finally {
      await second.svc.stop('SIGTERM');
    }
  }, 120_000);

  it('without bubblewrap on PATH the start stops with a plain message saying how to install it or opt out', async () => {
    const noBin = join(dir, 'no-bwrap-bin');
    mkdirSync(noBin, { recursive: true });
    const svc = startService({ cwd: dir, env: serviceEnv(await freePort(), { PATH: noBin }) });
    const { code } = await svc.exited;
    expect(code).toBe(1);
    const last = svc.errorOutput().trim().split('\n').pop();
    expect(last).toMatch(/^TASK_SANDBOX=bwrap \(the default\) needs bubblewrap, but no "bwrap" was found on PATH/);
    expect(last).toContain('apt-get install bubblewrap');
    expect(last).toContain('set TASK_SANDBOX=none');
  }, 60_000);

  it('a bad TASK_SANDBOX or TASK_SANDBOX_NETWORK stops the start and names the variable', async () => {
    for (const [name, value] of [['TASK_SANDBOX', 'docker'], ['TASK_SANDBOX_NETWORK', 'maybe']]) {
      const svc = startService({ cwd: dir, env: serviceEnv(await freePort(), { [name]: value }) });
      const { code } = await svc.exited;
      expect(code).toBe(1);
      expect(svc.output()).toContain(`${name}="${value}"`);
    }
  }, 60_000);

  it.runIf(process.getuid?.() === 0)('as root: a TASK_WORKSPACE_DIR the sandbox user cannot reach stops the start and says why', async () => {
    const closed = join(dir, 'closed');
    mkdirSync(closed, { mode: 0o700 });
    const svc = startService({ cwd: dir, env: serviceEnv(await freePort(), { TASK_WORKSPACE_DIR: join(closed, 'ws') }) });
    const { code } = await svc.exited;
    expect(code).toBe(1);
    const last = svc.errorOutput().trim().split('\n').pop();
    expect(last).toMatch(/bubblewrap \(.*bwrap\) could not run a command in a sandbox: .*Permission denied/);
    expect(last).toContain(`TASK_WORKSPACE_DIR (${join(closed, 'ws')}) and its parent folders must be searchable by it`);
  }, 60_000);
});
