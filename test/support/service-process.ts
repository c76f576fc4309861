import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

export const PROJECT_ROOT = resolve(__dirname, '../..');
/**
 * The same compilation as `npm run build` (tsc with tsconfig.json), into a folder of the tests
 * rather than dist/, so a build running at the same time cannot delete files under a running
 * process. It sits under node_modules/.cache so the built code resolves the project's packages.
 */
const BUILD_DIR = join(PROJECT_ROOT, 'node_modules/.cache/asa-test-build');
export const BUILT_MAIN = join(BUILD_DIR, 'main.js');

/** Builds the service into `outDir` (the tests' folder by default; the benches use their own). Returns its main.js. */
export function buildService(outDir = BUILD_DIR): string {
  const main = join(outDir, 'main.js');
  rmSync(outDir, { recursive: true, force: true });
  try {
    execFileSync('npx', ['tsc', '-p', 'tsconfig.json', '--outDir', outDir], { cwd: PROJECT_ROOT, stdio: 'pipe', timeout: 300_000 });
  } catch (err) {
    // Type errors still emit JavaScript (as nest build's tsc would; `npm run typecheck` reports
    // them); only a missing entry point is fatal here.
    const out = String((err as { stdout?: Buffer }).stdout ?? '');
    if (!existsSync(main)) throw new Error(`build failed:\n${out}`);
  }
  // The dashboard's static files, where the built DashboardModule looks for them (as `npm run build` does for dist/).
  execFileSync(process.execPath, ['scripts/build-dashboard.mjs', join(outDir, 'dashboard')], { cwd: PROJECT_ROOT, stdio: 'pipe', timeout: 120_000 });
  return main;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServiceProcess {
  child: ChildProcess;
  output: () => string;
  /** Standard error alone, in the order it was written (the two pipes interleave in no fixed order in `output`). */
  errorOutput: () => string;
  /** How the process ended; after SIGTERM Nest closes the app, then re-raises the signal, so `signal` is set. */
  exited: Promise<ProcessExit>;
  stop(signal?: NodeJS.Signals): Promise<ProcessExit>;
}

/**
 * The environment every real-process task test shares: the service on `port`, its LLM pointed at
 * a local fake OpenAI-compatible server (no SDK retries, so one call is one request), workers that
 * poll every 100 ms, gpt-4o-mini (priced) as the default model, workspaces in `workspaceDir`.
 */
export function taskServiceEnv(opts: { port: number; llmBaseUrl: string; workspaceDir: string }): Record<string, string> {
  return {
    PORT: String(opts.port),
    OPENAI_BASE_URL: opts.llmBaseUrl,
    OPENAI_API_KEY: 'sk-test',
    OPENAI_MAX_RETRIES: '0',
    TASK_POLL_INTERVAL_MS: '100',
    TASK_DEFAULT_MODEL: 'gpt-4o-mini',
    TASK_WORKSPACE_DIR: opts.workspaceDir,
  };
}

/** Runs `node dist/main.js` as a real process, with only the given environment on top of PATH/HOME. */
export function startService(opts: { cwd: string; env: Record<string, string>; main?: string }): ServiceProcess {
  const child = spawn(process.execPath, [opts.main ?? BUILT_MAIN], {
    cwd: opts.cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? opts.cwd, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => {
    out += d;
    err += d;
  });
  // 'close', not 'exit': 'exit' can come before the last of the output has been read.
  const exited = new Promise<ProcessExit>((res) => child.once('close', (code, signal) => res({ code, signal })));
  return {
    child,
    output: () => out,
    errorOutput: () => err,
    exited,
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

/** Polls until the URL answers (any status) or the deadline passes. */
export async function waitForHttp(url: string, timeoutMs = 30_000, proc?: ServiceProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fetch(url);
      return;
    } catch {
      if (proc && proc.child.exitCode !== null) throw new Error(`service exited early:\n${proc.output()}`);
      if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms:\n${proc?.output() ?? ''}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
