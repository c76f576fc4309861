import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { MATH_FIX } from '../src/demo/demo-responder';
import { freePort, PROJECT_ROOT } from './support/service-process';

/**
 * The README's "Offline, step by step" path, followed as a new user would from a clean copy of the
 * repository's files: its commands, run by a shell exactly as written (only the ports and the
 * sample folder changed, so the test can run beside others), against the real simulator and the
 * real service built by `npm start`, until the task has succeeded and its usage is read back.
 */
describe('first run, as the README tells it', () => {
  let work: string;
  const background: { name: string; child: ChildProcess; output: () => string }[] = [];

  /** A README command in a shell of its own process group, from the clean folder. */
  const startCommand = (name: string, command: string, env: Record<string, string>) => {
    const child = spawn('sh', ['-c', command], { cwd: join(work, 'clean'), env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const entry = { name, child, output: () => out };
    background.push(entry);
    return entry;
  };
  const runCommand = (command: string, env: Record<string, string>) =>
    execFileSync('sh', ['-c', command], { cwd: join(work, 'clean'), env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'asa-first-run-'));
    // A clean working folder: the repository's files as a clone has them, and the installed packages.
    const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: PROJECT_ROOT, encoding: 'utf8' })
      .split('\0')
      .filter(Boolean);
    for (const file of files) {
      const dest = join(work, 'clean', file);
      mkdirSync(dirname(dest), { recursive: true });
      try {
        copyFileSync(join(PROJECT_ROOT, file), dest);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // tracked but deleted in the working tree
      }
    }
    symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(work, 'clean', 'node_modules'));
  });

  afterAll(async () => {
    for (const { child } of background.reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const closed = new Promise((r) => child.once('close', r));
      process.kill(-child.pid!, 'SIGTERM');
      const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 30_000);
      await closed;
      clearTimeout(timer);
    }
    rmSync(work, { recursive: true, force: true });
  });

  it('simulator, npm start, the sample repository, submit, status, usage: the task succeeds and its cost is read back', async () => {
    const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Offline, step by step'), readme.indexOf('### The simulator'));
    const commands = /```bash\n([\s\S]*?)```/.exec(section)![1].trim().split('\n');
    expect(commands).toHaveLength(6);
    const [simulator, start, sampleRepo, submit, status, usage] = commands;
    expect(simulator).toBe('npm run simulator -- --port 8100');
    expect(start).toMatch(/^OPENAI_BASE_URL=http:\/\/127\.0\.0\.1:8100\/v1 OPENAI_API_KEY=\S+ npm start$/);

    const simPort = await freePort();
    const svcPort = await freePort();
    const sampleDir = join(work, 'asa-sample-repo');
    const local = (command: string) =>
      command.replaceAll(':8100', `:${simPort}`).replaceAll('8100', String(simPort)).replaceAll('localhost:8000', `127.0.0.1:${svcPort}`).replaceAll('/tmp/asa-sample-repo', sampleDir);
    // What a user's shell has; PORT only because 8000 may be taken on this machine.
    const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? work, PORT: String(svcPort) };

    const sim = startCommand('simulator', local(simulator), env);
    const svc = startCommand('service', local(start), env);
    const deadline = Date.now() + 280_000;
    const health = `http://127.0.0.1:${svcPort}/health`;
    for (;;) {
      if (svc.child.exitCode !== null) throw new Error(`npm start ended:\n${svc.output()}`);
      if (sim.child.exitCode !== null) throw new Error(`npm run simulator ended:\n${sim.output()}`);
      if (Date.now() > deadline) throw new Error(`the service did not answer:\n${svc.output()}`);
      if (await fetch(health).then((r) => r.ok, () => false)) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(sim.output()).toContain(`listening: OPENAI_BASE_URL=http://127.0.0.1:${simPort}/v1`);
    expect(svc.output()).toContain(`LLM endpoint: http://127.0.0.1:${simPort}/v1 (API key set)`);

    expect(runCommand(local(sampleRepo), env)).toContain(`sample repository (git, one commit; bugs in src/math.js and src/strings.js): ${sampleDir}`);
    const submitted = JSON.parse(runCommand(local(submit), env)) as { task_id: string; status: string };
    expect(submitted.status).toBe('queued');

    const withId = (command: string) => local(command).replace('TASK_ID', submitted.task_id);
    let task: Record<string, unknown> = {};
    while (!['succeeded', 'failed', 'cancelled'].includes(String(task.status))) {
      if (Date.now() > deadline) throw new Error(`the task did not finish: ${JSON.stringify(task)}\n${svc.output()}`);
      await new Promise((r) => setTimeout(r, 500));
      task = JSON.parse(runCommand(withId(status), env));
    }
    expect(task, svc.output()).toMatchObject({ status: 'succeeded', attempts: 1, failure_reason: null, model: 'gpt-4o-mini', unpriced_requests: 0, cost_note: null });
    expect(String(task.patch)).toContain(MATH_FIX.split('\n').find((l) => l.startsWith('+  '))!);
    expect(Number(task.cost_usd)).toBeGreaterThan(0);

    // Usage reaches the database in the background: read until the call is there.
    let calls: Record<string, any> = {}; // eslint-disable-line @typescript-eslint/no-explicit-any
    while (Number(calls.total_requests ?? 0) < 1 && Date.now() < deadline) {
      calls = JSON.parse(runCommand(withId(usage), env));
      if (Number(calls.total_requests ?? 0) < 1) await new Promise((r) => setTimeout(r, 300));
    }
    expect(calls).toMatchObject({ task_id: submitted.task_id, total_requests: 1, unpriced_requests: 0 });
    expect(calls.by_model['gpt-4o-mini']).toMatchObject({ requests: 1 });
    expect(calls.total_cost_usd_exact).toBe(task.cost_usd_exact);
  }, 300_000);
});
