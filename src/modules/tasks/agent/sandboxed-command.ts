import { spawn } from 'node:child_process';
import { listProcesses } from '../sandbox/proc';
import { Sandbox, SandboxMounts } from '../sandbox/sandbox';
import { CappedOutput } from './capped-output';

export interface SandboxedCommandOptions {
  /** Where the command runs (TASK_SANDBOX): bubblewrap, or none. */
  readonly sandbox: Sandbox;
  /** The folders the command may see and write (the task's workspace). */
  readonly mounts: SandboxMounts;
  /** Working directory (the task's checkout). */
  readonly cwd: string;
  /** Complete environment of the command (see buildSandboxEnv); nothing is inherited. */
  readonly env: Record<string, string>;
  readonly timeoutMs: number;
  /** Time between SIGTERM and SIGKILL when the command is stopped. */
  readonly killGraceMs: number;
  /** Bytes of output kept (head and tail). */
  readonly maxOutputBytes: number;
  /** Stops the command (cancel, shutdown). */
  readonly signal?: AbortSignal;
  /** Told the process group as soon as the command started (to record it for clean-up after a crash). */
  readonly onStart?: (pgid: number) => void;
}

export interface SandboxedCommandResult {
  /** Exit code of the shell, null when it was ended by a signal. */
  readonly exitCode: number | null;
  readonly exitSignal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly aborted: boolean;
  /** stdout and stderr interleaved in arrival order, capped. */
  readonly output: string;
  readonly outputTruncated: boolean;
  readonly outputBytes: number;
  readonly durationMs: number;
  /** Process group id the command ran in (its pid). */
  readonly pgid: number | null;
  readonly passed: boolean;
}

/**
 * Runs a shell command in the sandbox, as the leader of its own process group, so that
 * everything it starts (test workers, servers, a stray `sleep`) can be stopped together: SIGTERM
 * to the group, then SIGKILL after a grace period. Stopped on timeout and on abort; leftovers of a
 * command that exited normally are killed too. Under bubblewrap the PID namespace also catches
 * what left the group (setsid): it ends with the command.
 */
export function runSandboxedCommand(command: string, opts: SandboxedCommandOptions): Promise<SandboxedCommandResult> {
  const started = Date.now();
  const output = new CappedOutput(opts.maxOutputBytes);

  return new Promise<SandboxedCommandResult>((resolve) => {
    let timedOut = false;
    let aborted = false;
    let exitCode: number | null = null;
    let exitSignal: NodeJS.Signals | null = null;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;

    if (opts.signal?.aborted) {
      resolve(result(null, null, false, true, null));
      return;
    }

    // `exec 2>&1` first: one pipe for both streams keeps stdout and stderr in the order written.
    const launch = opts.sandbox.launch(['/bin/sh', '-c', `exec 2>&1\n${command}`], { cwd: opts.cwd, env: opts.env, mounts: opts.mounts });
    const child = spawn(launch.file, launch.args, {
      cwd: launch.cwd,
      env: launch.env,
      ...(launch.uid !== undefined ? { uid: launch.uid, gid: launch.gid } : {}),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pgid = child.pid ?? null;
    if (pgid !== null) opts.onStart?.(pgid);

    const stop = () => {
      if (pgid === null) return;
      // bwrap itself ends the whole sandbox at once when signalled: the grace period is for the
      // command, so SIGTERM goes to the others in the group and bwrap gets the final SIGKILL.
      if (launch.supervised) signalMembers(pgid, 'SIGTERM', pgid);
      else signalGroup(pgid, 'SIGTERM');
      killTimer ??= setTimeout(() => signalGroup(pgid, 'SIGKILL'), opts.killGraceMs);
    };

    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, opts.timeoutMs);
    const onAbort = () => {
      aborted = true;
      stop();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout.on('data', (c: Buffer) => output.append(c));
    child.stderr.on('data', (c: Buffer) => output.append(c));
    const closed = new Promise<void>((r) => child.on('close', () => r()));

    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve(result(exitCode, exitSignal, timedOut, aborted, pgid));
    };

    child.on('error', (err) => {
      output.append(`\n[failed to start the test command: ${err.message}]\n`);
      if (pgid === null) finish();
    });
    child.on('exit', (code, sig) => {
      exitCode = code;
      exitSignal = sig;
      clearTimeout(timer);
      // The shell is gone; whatever it left running in its group goes too (after the same
      // SIGTERM grace), and the result is only reported once the whole group has ended.
      if (pgid === null) return finish();
      stop();
      void waitForGroupExit(pgid, opts.killGraceMs + GROUP_REAP_MARGIN_MS).then(async () => {
        // Every writer of the pipes is gone, so 'close' follows at once; don't wait forever anyway.
        await Promise.race([closed, delay(500)]);
        child.stdout.destroy();
        child.stderr.destroy();
        finish();
      });
    });
  });

  function result(
    exitCode: number | null,
    exitSignal: NodeJS.Signals | null,
    timedOut: boolean,
    aborted: boolean,
    pgid: number | null,
  ): SandboxedCommandResult {
    let text = output.toString();
    if (timedOut) text += `\n[test command timed out after ${opts.timeoutMs} ms; its process group was killed]\n`;
    if (aborted) text += '\n[test command stopped: the task was cancelled]\n';
    return {
      exitCode,
      exitSignal,
      timedOut,
      aborted,
      output: text,
      outputTruncated: output.truncated,
      outputBytes: output.totalBytes,
      durationMs: Date.now() - started,
      pgid,
      passed: exitCode === 0 && !timedOut && !aborted,
    };
  }
}

/** Extra time, after SIGKILL, for the killed processes to be reaped. */
const GROUP_REAP_MARGIN_MS = 5_000;

function signalGroup(pgid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, sig);
    return true;
  } catch {
    // ESRCH: no process is left in the group.
    return false;
  }
}

/** Signals every process of the group except `except` (one by one, from /proc). */
function signalMembers(pgid: number, sig: NodeJS.Signals, except: number): void {
  for (const p of listProcesses()) {
    if (p.pgid !== pgid || p.pid === except) continue;
    try {
      process.kill(p.pid, sig);
    } catch {
      // Gone in the meantime.
    }
  }
}

/**
 * Whether a process of the group still runs. Zombies do not count: they have ended and only wait
 * for their new parent (the machine's init, which may reap slowly) to collect them.
 */
export function processGroupAlive(pgid: number): boolean {
  if (!signalGroup(pgid, 0)) return false;
  return listProcesses().some((p) => p.pgid === pgid && p.state !== 'Z');
}

async function waitForGroupExit(pgid: number, maxWaitMs: number): Promise<void> {
  const deadline = Date.now() + maxWaitMs;
  while (processGroupAlive(pgid) && Date.now() < deadline) await delay(25);
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
