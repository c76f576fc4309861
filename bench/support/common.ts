import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

export const ROOT = resolve(__dirname, '../..');

/** p50/p99/mean of milliseconds (nearest rank). */
/**
 * The environment every benchmark gives the service, its scratch files in `dir`: no API keys, no
 * scheduled exports, no sandbox (no task runs). Each benchmark adds its database, port and logging.
 */
export function benchServiceEnv(dir: string): Record<string, string> {
  writeFileSync(join(dir, 'keys.json'), '{ "keys": [] }\n');
  mkdirSync(join(dir, 'workspaces'), { recursive: true });
  return {
    API_KEYS_FILE: join(dir, 'keys.json'),
    USAGE_JOURNAL_DIR: join(dir, 'journal'),
    BILLING_EXPORT_DIR: join(dir, 'exports'),
    BILLING_DAILY_CRON: '',
    BILLING_MONTHLY_CRON: '',
    TASK_WORKSPACE_DIR: join(dir, 'workspaces'),
    TASK_SANDBOX: 'none',
  };
}

export interface Quantiles {
  readonly n: number;
  readonly p50: number;
  readonly p99: number;
  readonly mean: number;
}

export function quantiles(ms: readonly number[]): Quantiles {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
  return { n: s.length, p50: round(q(0.5)), p99: round(q(0.99)), mean: round(s.reduce((a, b) => a + b, 0) / s.length) };
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export function round(x: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Resident set size of a process (Linux /proc), in MB. */
export function rssMb(pid: number = process.pid): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? round(Number(m[1]) / 1024, 1) : Number.NaN;
}

/** Samples a process's RSS every `everyMs` until stopped; returns the peak. */
export function rssSampler(pid: number, everyMs = 50): { stop: () => number } {
  let peak = rssMb(pid);
  const t = setInterval(() => {
    try {
      peak = Math.max(peak, rssMb(pid));
    } catch {
      // the process has ended
    }
  }, everyMs);
  return {
    stop: () => {
      clearInterval(t);
      return peak;
    },
  };
}

/** A TypeScript file run in its own Node process (ts-node, transpile only). */
export function spawnTs(file: string, args: string[] = [], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['--require', 'ts-node/register/transpile-only', join(ROOT, file), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** The first stdout line of a child that parses as JSON. */
export function firstJsonLine<T>(child: ChildProcess, timeoutMs = 60_000): Promise<T> {
  return new Promise<T>((res, rej) => {
    let err = '';
    child.stderr?.on('data', (d) => (err += d));
    const timer = setTimeout(() => rej(new Error(`no JSON line within ${timeoutMs} ms: ${err}`)), timeoutMs);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const v = JSON.parse(line) as T;
        clearTimeout(timer);
        res(v);
      } catch {
        // not the line we wait for
      }
    });
    child.once('exit', (code) => rej(new Error(`exited (${code}) before printing JSON: ${err}`)));
  });
}

/** Runs a TypeScript file to its end, collecting its output. */
export async function runTs(file: string, args: string[], timeoutMs: number): Promise<{ code: number | null; seconds: number; output: string }> {
  const started = Date.now();
  const child = spawnTs(file, args);
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((res) => child.once('close', (c) => res(c)));
  clearTimeout(timer);
  return { code, seconds: round((Date.now() - started) / 1000, 1), output };
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGb: number;
  readonly loadAverage: number[];
  readonly node: string;
  readonly commit: string;
  readonly packages: Record<string, string>;
}

export function machineInfo(): MachineInfo {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    if (execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' }).trim()) commit += '+changes';
  } catch {
    // not a git checkout
  }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGb: round(totalmem() / 1024 ** 3, 1),
    loadAverage: loadavg().map((x) => round(x, 2)),
    node: process.version,
    commit,
    packages: Object.fromEntries(['openai', '@nestjs/core', 'fastify', 'typeorm', 'sqlite3', 'pg', 'prom-client', 'js-tiktoken', 'piscina', 'tinybench'].map((p) => [p, packageVersion(p)])),
  };
}

/** `--quick` and `--out <file>` as every section takes them. */
export function sectionArgs(argv = process.argv.slice(2)): { quick: boolean; out: string | null } {
  const i = argv.indexOf('--out');
  return { quick: argv.includes('--quick'), out: i >= 0 ? argv[i + 1] : null };
}

/** Runs a section's main: its result is written to `--out` (for `npm run bench`) or printed. */
export function runSection<T>(main: (quick: boolean) => Promise<T>): void {
  const { quick, out } = sectionArgs();
  main(quick)
    .then(async (result) => {
      const text = `${JSON.stringify(result, null, 2)}\n`;
      if (out) (await import('node:fs')).writeFileSync(out, text);
      else process.stdout.write(text);
      process.exit(0);
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
