import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tasksConfig } from '../../../config/tasks.config';
import { buildSandboxEnv } from './sandbox-env';
import { processGroupAlive, runSandboxedCommand, SandboxedCommandOptions } from './sandboxed-command';

/** Real /bin/sh child processes in a scratch folder. */
describe('runSandboxedCommand', () => {
  let dir: string;
  let opts: SandboxedCommandOptions;
  const savedEnv = { ...process.env };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'asa-sandbox-'));
    opts = {
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
    const r = await runSandboxedCommand(`sleep 300 & echo $! > ${join(dir, 'bg.pid')}; echo started; sleep 300`, { ...opts, timeoutMs: 800 });
    expect(r.timedOut).toBe(true);
    expect(r.passed).toBe(false);
    expect(r.output).toContain('started');
    expect(r.output).toContain('timed out after 800 ms');
    expect(r.pgid).toBeGreaterThan(0);
    expect(() => process.kill(-r.pgid!, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    const bgPid = Number(readFileSync(join(dir, 'bg.pid'), 'utf8'));
    expect(() => process.kill(bgPid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  });

  it('a process that ignores SIGTERM is SIGKILLed after the grace period', async () => {
    const r = await runSandboxedCommand(`trap '' TERM; sh -c "trap '' TERM; sleep 300" & sleep 300`, { ...opts, timeoutMs: 500, killGraceMs: 300 });
    expect(r.timedOut).toBe(true);
    expect(processGroupAlive(r.pgid!)).toBe(false);
  });

  it('on abort (cancel) kills the whole process group', async () => {
    const controller = new AbortController();
    const pending = runSandboxedCommand(`sleep 300 & echo $! > ${join(dir, 'bg.pid')}; sleep 300`, { ...opts, signal: controller.signal });
    await new Promise((r) => setTimeout(r, 300));
    controller.abort();
    const r = await pending;
    expect(r.aborted).toBe(true);
    expect(r.timedOut).toBe(false);
    expect(r.passed).toBe(false);
    expect(() => process.kill(-r.pgid!, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    const bgPid = Number(readFileSync(join(dir, 'bg.pid'), 'utf8'));
    expect(processGroupAlive(bgPid) || (() => { try { process.kill(bgPid, 0); return true; } catch { return false; } })()).toBe(false);
  });

  it('does not start at all when already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const r = await runSandboxedCommand(`touch ${join(dir, 'ran')}`, { ...opts, signal: controller.signal });
    expect(r).toMatchObject({ aborted: true, passed: false, pgid: null });
    expect(() => readFileSync(join(dir, 'ran'))).toThrow();
  });

  it('kills what a passing command left running in the background', async () => {
    const r = await runSandboxedCommand(`sleep 300 & echo $! > ${join(dir, 'bg.pid')}; echo done`, opts);
    expect(r.passed).toBe(true);
    const bgPid = Number(readFileSync(join(dir, 'bg.pid'), 'utf8'));
    expect(() => process.kill(bgPid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
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
});
