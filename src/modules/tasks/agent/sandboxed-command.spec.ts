import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pidsRunning } from '../../../../test/support/processes';
import { tasksConfig } from '../../../config/tasks.config';
import { createSandbox } from '../sandbox/create-sandbox';
import { NoSandbox } from '../sandbox/no-sandbox';
import { Sandbox } from '../sandbox/sandbox';
import { buildSandboxEnv } from './sandbox-env';
import { processGroupAlive, runSandboxedCommand, SandboxedCommandOptions } from './sandboxed-command';

const bwrap = (network = false) =>
  createSandbox({ sandbox: 'bwrap', sandboxNetwork: network, workspaceDir: tmpdir(), executableSearchPath: process.env.PATH ?? '' });

/** Sleeps with durations no other test uses, so they can be found in /proc by their command line. */
let nextSleep = 300_000 + (process.pid % 1000) * 100;
const uniqueSleep = () => String(nextSleep++);

/** Real /bin/sh child processes in a scratch folder, with and without the bubblewrap sandbox. */
describe.each([
  ['none', async () => new NoSandbox() as Sandbox],
  ['bwrap', () => bwrap()],
])('runSandboxedCommand (TASK_SANDBOX=%s)', (kind, make) => {
  let sandbox: Sandbox;
  let dir: string;
  let opts: SandboxedCommandOptions;
  const savedEnv = { ...process.env };

  beforeAll(async () => {
    sandbox = await make();
  });
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'asa-sandbox-'));
    await sandbox.handOver(dir);
    opts = {
      sandbox,
      mounts: { readOnly: [], writable: [dir] },
      cwd: dir,
      env: buildSandboxEnv(tasksConfig().testEnv, { home: dir, tmp: dir }),
      timeoutMs: 20_000,
      killGraceMs: 500,
      maxOutputBytes: 64 * 1024,
    };
  });
  afterEach(() => {
    process.env = { ...savedEnv };
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports exit code and interleaved stdout/stderr; passes on exit 0 only', async () => {
    const ok = await runSandboxedCommand('echo one; echo two >&2; echo three', opts);
    expect(ok).toMatchObject({ exitCode: 0, passed: true, timedOut: false, aborted: false });
    expect(ok.output).toBe('one\ntwo\nthree\n');
    const bad = await runSandboxedCommand('echo failing; exit 3', opts);
    expect(bad).toMatchObject({ exitCode: 3, passed: false });
  });

  it('runs in the workspace with HOME and TMPDIR inside it and node on PATH', async () => {
    const r = await runSandboxedCommand('pwd; echo "$HOME"; echo "$TMPDIR"; echo "$CI"; node -e "console.log(process.version)"', opts);
    expect(r.output.split('\n').slice(0, 5)).toEqual([dir, dir, dir, 'true', process.version]);
  });

  it('the test command cannot see OPENAI_API_KEY or any other secret of the service', async () => {
    process.env.OPENAI_API_KEY = 'sk-test-must-not-leak-1234';
    process.env.DATABASE_URL = 'postgres://asa:db-password-5678@db/asa';
    process.env.SLACK_WEBHOOK_URL = 'https://hooks.slack.com/services/SECRET/9999';
    process.env.SMTP_PASSWORD = 'smtp-password-4321';
    process.env.OTEL_EXPORTER_OTLP_HEADERS = 'authorization=Bearer otel-token-8765';
    process.env.TASK_TEST_ENV_PASSTHROUGH = 'OPENAI_API_KEY,SMTP_PASSWORD';
    // As the service does: config is read from the environment, the sandbox env built from it.
    const env = buildSandboxEnv(tasksConfig().testEnv, { home: dir, tmp: dir });
    const r = await runSandboxedCommand('env; node -e "console.log(JSON.stringify(process.env))"', { ...opts, env });
    expect(r.exitCode).toBe(0);
    expect(r.output).toContain('CI=true');
    for (const leaked of ['OPENAI_API_KEY', 'sk-test-must-not-leak-1234', 'db-password-5678', 'SECRET/9999', 'smtp-password-4321', 'otel-token-8765', 'DATABASE_URL']) {
      expect(r.output).not.toContain(leaked);
    }
  });

  it('on timeout kills the whole process group, grandchildren included', async () => {
    // The shell starts a background grandchild and waits on a foreground one; both must die.
    const [bg, fg] = [uniqueSleep(), uniqueSleep()];
    const r = await runSandboxedCommand(`sleep ${bg} & echo started; sleep ${fg}`, { ...opts, timeoutMs: 800 });
    expect(r.timedOut).toBe(true);
    expect(r.passed).toBe(false);
    expect(r.output).toContain('started');
    expect(r.output).toContain('timed out after 800 ms');
    expect(r.pgid).toBeGreaterThan(0);
    expect(processGroupAlive(r.pgid!)).toBe(false);
    expect(pidsRunning('sleep', bg)).toEqual([]);
    expect(pidsRunning('sleep', fg)).toEqual([]);
  });

  it('a process that ignores SIGTERM is SIGKILLed after the grace period', async () => {
    const r = await runSandboxedCommand(`trap '' TERM; sh -c "trap '' TERM; sleep 300" & sleep 300`, { ...opts, timeoutMs: 500, killGraceMs: 300 });
    expect(r.timedOut).toBe(true);
    expect(processGroupAlive(r.pgid!)).toBe(false);
  });

  it('on timeout the command gets SIGTERM first and may clean up within the grace period', async () => {
    const r = await runSandboxedCommand(`trap 'echo got-TERM; exit 143' TERM; echo ready; sleep ${uniqueSleep()} & wait`, {
      ...opts,
      timeoutMs: 800,
      killGraceMs: 5_000,
    });
    expect(r.timedOut).toBe(true);
    expect(r.output).toContain('got-TERM');
  });

  it('on abort (cancel) kills the whole process group', async () => {
    const [bg, fg] = [uniqueSleep(), uniqueSleep()];
    const controller = new AbortController();
    const pending = runSandboxedCommand(`sleep ${bg} & sleep ${fg}`, { ...opts, signal: controller.signal });
    await vi.waitFor(() => expect(pidsRunning('sleep', fg)).toHaveLength(1), { timeout: 10_000 });
    controller.abort();
    const r = await pending;
    expect(r.aborted).toBe(true);
    expect(r.timedOut).toBe(false);
    expect(r.passed).toBe(false);
    expect(processGroupAlive(r.pgid!)).toBe(false);
    expect(pidsRunning('sleep', bg)).toEqual([]);
  });

  it('does not start at all when already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const r = await runSandboxedCommand(`touch ${join(dir, 'ran')}`, { ...opts, signal: controller.signal });
    expect(r).toMatchObject({ aborted: true, passed: false, pgid: null });
    expect(existsSync(join(dir, 'ran'))).toBe(false);
  });

  it('kills what a passing command left running in the background', async () => {
    const bg = uniqueSleep();
    const r = await runSandboxedCommand(`sleep ${bg} & echo done`, opts);
    expect(r.passed).toBe(true);
    expect(pidsRunning('sleep', bg)).toEqual([]);
  });

  it('caps the output, keeping head and tail', async () => {
    const r = await runSandboxedCommand(`echo FIRST; head -c 2000000 /dev/zero | tr '\\0' x; echo; echo LAST`, { ...opts, maxOutputBytes: 3000 });
    expect(r.exitCode).toBe(0);
    expect(r.outputTruncated).toBe(true);
    expect(r.outputBytes).toBeGreaterThan(2_000_000);
    expect(r.output.startsWith('FIRST\n')).toBe(true);
    expect(r.output.trimEnd().endsWith('LAST')).toBe(true);
    expect(r.output).toMatch(/\[\.\.\. \d+ bytes of output omitted \.\.\.\]/);
    expect(r.output.length).toBeLessThan(3200);
  });

  it(`${kind === 'bwrap' ? 'kills' : 'cannot kill'} processes that left the group (setsid, nohup, double fork) when the command ends`, async () => {
    const [a, b, c] = [uniqueSleep(), uniqueSleep(), uniqueSleep()];
    try {
      const r = await runSandboxedCommand(`setsid sleep ${a} & nohup sleep ${b} >/dev/null 2>&1 & (setsid sh -c "sleep ${c}" &); sleep 0.3; echo done`, opts);
      expect(r.passed).toBe(true);
      if (kind === 'bwrap') {
        for (const s of [a, b, c]) expect(pidsRunning('sleep', s), `sleep ${s}`).toEqual([]);
      } else {
        // Without the sandbox's PID namespace, a new session escapes the process group: the gap bwrap closes.
        expect(pidsRunning('sleep', a).length + pidsRunning('sleep', c).length).toBeGreaterThan(0);
      }
    } finally {
      for (const s of [a, b, c]) for (const pid of pidsRunning('sleep', s)) process.kill(pid, 'SIGKILL');
    }
  });
});

/** What only the bubblewrap sandbox guarantees, shown against the real bwrap. */
describe('runSandboxedCommand in bubblewrap: isolation', () => {
  let sandbox: Sandbox;
  let scratch: string;
  let work: string;
  let outside: string;
  let server: Server;
  let port: number;
  let opts: SandboxedCommandOptions;

  beforeAll(async () => {
    sandbox = await bwrap();
    scratch = mkdtempSync(join(tmpdir(), 'asa-sandbox-iso-'));
    work = join(scratch, 'work');
    outside = join(scratch, 'outside');
    // As for TASK_WORKSPACE_DIR: the sandbox's user must be able to pass through to its folder.
    chmodSync(scratch, 0o711);
    mkdirSync(work);
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret.txt'), 'outside-secret-5150\n');
    await sandbox.handOver(work);
    opts = {
      sandbox,
      mounts: { readOnly: [], writable: [work] },
      cwd: work,
      env: buildSandboxEnv({ PATH: process.env.PATH ?? '' }, { home: work, tmp: work }),
      timeoutMs: 20_000,
      killGraceMs: 500,
      maxOutputBytes: 64 * 1024,
    };
    server = createServer((s) => s.on('error', () => {}).end('hello\n'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    rmSync(scratch, { recursive: true, force: true });
  });

  const connect = `node -e "require('net').connect(${'$PORT'}, '127.0.0.1').on('connect', () => { console.log('CONNECTED'); process.exit(0) }).on('error', (e) => { console.log('NO-CONNECTION', e.code); process.exit(1) })"`;

  it('sees only its own processes: not the service, not its environment', async () => {
    const r = await runSandboxedCommand(`ls /proc | grep -E '^[0-9]+$' | tr '\\n' ' '; echo; cat /proc/${process.pid}/environ || echo NO-SERVICE-PROC; echo "ppid=$PPID"`, opts);
    const pids = r.output.split('\n')[0].trim().split(' ').map(Number);
    expect(Math.max(...pids)).toBeLessThan(50); // a fresh PID namespace, not the host's thousands
    expect(r.output).toContain('NO-SERVICE-PROC');
    expect(r.output).toContain('ppid=1'); // its parent is the sandbox's init, not the service
  });

  it('runs as an unprivileged user, and the files it writes belong to that user', async () => {
    const r = await runSandboxedCommand('id -u; touch made-here', opts);
    const expected = process.getuid?.() === 0 ? 65534 : process.getuid?.();
    expect(r.output.trim()).toBe(String(expected));
    expect(statSync(join(work, 'made-here')).uid).toBe(expected);
  });

  it('writes only its own folders: system folders are read-only, other folders absent', async () => {
    const r = await runSandboxedCommand(
      `touch /usr/pwned || echo RO-USR; touch /etc/pwned || echo RO-ETC; touch /pwned || echo RO-ROOT; cat ${outside}/secret.txt || echo NO-OUTSIDE; echo ROOT: $(ls /)`,
      opts,
    );
    expect(r.output).toContain('RO-USR');
    expect(r.output).toContain('RO-ETC');
    expect(r.output).toContain('NO-OUTSIDE');
    expect(r.output).not.toContain('outside-secret-5150');
    expect(r.output).toContain('RO-ROOT');
    // Of the machine's top-level folders only the system ones are there: no /root, /home, /var, /srv, /opt, /work.
    const top = /^ROOT: (.*)$/m.exec(r.output)?.[1].split(' ') ?? [];
    expect(top.length).toBeGreaterThan(3);
    for (const name of top) expect(['bin', 'dev', 'etc', 'lib', 'lib32', 'lib64', 'libx32', 'proc', 'sbin', 'tmp', 'usr']).toContain(name);
    expect(existsSync('/usr/pwned')).toBe(false);
  });

  it('cannot open a network connection, even to 127.0.0.1; TASK_SANDBOX_NETWORK=true allows it', async () => {
    const off = await runSandboxedCommand(connect.replace('$PORT', String(port)), opts);
    expect(off.output).toMatch(/NO-CONNECTION (ECONNREFUSED|ENETUNREACH)/);
    expect(off.passed).toBe(false);
    const on = await runSandboxedCommand(connect.replace('$PORT', String(port)), { ...opts, sandbox: await bwrap(true) });
    expect(on.output).toContain('CONNECTED');
    expect(on.passed).toBe(true);
  });
});
