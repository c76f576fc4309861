import { ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { PROJECT_ROOT, ProcessExit } from './service-process';

export interface NpmScriptProcess {
  /** The `npm` process itself: what a user's Ctrl-C, a process manager or `kill` reaches. */
  child: ChildProcess;
  output: () => string;
  exited: Promise<ProcessExit>;
  /** Resolves with the first match of `pattern` in the output; rejects when the process ends or the time is up. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Sends `signal` to the npm process and waits for it to end (SIGKILL after 30 s). */
  stop(signal?: NodeJS.Signals): Promise<ProcessExit>;
}

/** Runs `npm run <script> -- <args>` as a user would, from `cwd` (default: the project). */
export function runNpmScript(script: string, args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): NpmScriptProcess {
  const child = spawn('npm', ['run', '--silent', script, '--', ...args], {
    cwd: opts.cwd ?? PROJECT_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d;
    listeners.forEach((l) => l());
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<ProcessExit>((res) => child.once('close', (code, signal) => res({ code, signal })));
  return {
    child,
    output: () => out,
    exited,
    waitFor: (pattern, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(out);
          if (m) done(() => resolve(m));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`no ${pattern} in the output within ${timeoutMs} ms:\n${out}`))), timeoutMs);
        const done = (then: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          then();
        };
        listeners.add(check);
        void exited.then((e) => done(() => reject(new Error(`npm run ${script} ended (${JSON.stringify(e)}) before ${pattern}:\n${out}`))));
        check();
      }),
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** Whether nothing listens on 127.0.0.1:`port` (a listener can be opened there). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
