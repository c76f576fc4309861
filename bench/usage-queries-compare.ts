/**
 * Before/after on ONE database: the usage queries over HTTP against the service built from a git
 * commit (the reference) and from the working tree, each run as deployed (`node main.js`, its own
 * process), in alternating rounds on the same data, so both see the same rows, caches and machine
 * load as far as one run allows. Reports p50/p99 of each and the ratio working tree / reference.
 *
 *   npx ts-node --transpile-only bench/usage-queries-compare.ts --database-url URL [--base COMMIT]
 *       [--samples 20] [--rounds 3] [--only REGEX]
 *
 * The database is not created here: fill one with bench/generate-usage.ts (e.g. 10 M rows) while no
 * service runs. Starting the working tree's build runs its migrations on it; the reference's build
 * ignores tables it does not know. `--base` (default `main`) is any commit git names.
 * Hold the machine's benchmark lock (`flock /work/bench.lock ...`) when others share it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Bench } from 'tinybench';
import { buildService, freePort, startService, waitForHttp } from '../test/support/service-process';
import { quantiles, benchServiceEnv, ROOT } from './support/common';

const QUERIES: Record<string, string> = {
  'overall 30 d': '/api/v1/usage/overall?days=30',
  'overall 90 d': '/api/v1/usage/overall?days=90',
  'users 30 d, first page': '/api/v1/usage/users?days=30',
  'user 30 d': '/api/v1/usage/user/user-7?days=30',
  'timeseries 30 d by model': '/api/v1/usage/timeseries?days=30&interval=day&group_by=model',
  'task metrics 30 d': '/api/v1/usage/metrics/tasks?days=30',
};

/** Builds `commit` (its own sources, this checkout's packages) and returns its main.js. */
function buildCommit(commit: string): string {
  const src = mkdtempSync(join(tmpdir(), 'asa-compare-src-'));
  try {
    const archive = execFileSync('git', ['archive', commit], { cwd: ROOT, maxBuffer: 1 << 30 });
    execFileSync('tar', ['-x', '-C', src], { input: archive });
    symlinkSync(join(ROOT, 'node_modules'), join(src, 'node_modules'));
    // Under this checkout's node_modules, so the built code resolves the same packages.
    const out = join(ROOT, 'node_modules/.cache/asa-compare-base');
    rmSync(out, { recursive: true, force: true });
    try {
      execFileSync('npx', ['tsc', '-p', 'tsconfig.json', '--outDir', out], { cwd: src, stdio: 'pipe', timeout: 300_000 });
    } catch {
      // Type errors still emit JavaScript; a missing entry point is caught when it starts.
    }
    return join(out, 'main.js');
  } finally {
    rmSync(src, { recursive: true, force: true });
  }
}

async function sampleBuild(main: string, databaseUrl: string, samples: number, only: RegExp | null, into: Map<string, number[]>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'asa-compare-svc-'));
  const port = await freePort();
  const env = { ...benchServiceEnv(dir), PORT: String(port), DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' };
  const base = `http://127.0.0.1:${port}`;
  const svc = startService({ cwd: dir, env, main });
  try {
    // The first start of a build may run migrations over millions of rows.
    await waitForHttp(`${base}/health`, 900_000, svc);
    for (const [name, path] of Object.entries(QUERIES)) {
      if (only && !only.test(name)) continue;
      const bench = new Bench({ iterations: samples, time: 0, warmup: true, warmupIterations: 2, warmupTime: 0, retainSamples: true });
      bench.add(name, async () => {
        const res = await fetch(`${base}${path}`);
        const body = await res.text();
        if (res.status !== 200) throw new Error(`${path} answered ${res.status}: ${body.slice(0, 300)}`);
      });
      await bench.run();
      const result = bench.tasks[0].result;
      if (result.state !== 'completed') throw new Error(`${name}: ${result.state}${'error' in result ? `: ${String(result.error)}` : ''}`);
      const list = into.get(name) ?? [];
      list.push(...(result.latency.samples ?? []));
      into.set(name, list);
    }
  } finally {
    await svc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      'database-url': { type: 'string' },
      base: { type: 'string', default: 'main' },
      samples: { type: 'string', default: '20' },
      rounds: { type: 'string', default: '3' },
      only: { type: 'string' },
    },
  });
  const databaseUrl = values['database-url'];
  if (!databaseUrl) throw new Error('--database-url is required (a database filled by bench/generate-usage.ts)');
  const samples = Number(values.samples);
  const rounds = Number(values.rounds);
  const only = values.only ? new RegExp(values.only) : null;
  const builds: [label: string, main: string][] = [
    [`base (${values.base})`, buildCommit(values.base!)],
    ['working tree', buildService(join(ROOT, 'node_modules/.cache/asa-compare-tree'))],
  ];
  const results = builds.map(() => new Map<string, number[]>());
  for (let r = 0; r < rounds; r++) {
    for (let b = 0; b < builds.length; b++) await sampleBuild(builds[b][1], databaseUrl, samples, only, results[b]);
  }
  const rows = [...results[0].keys()].map((query) => {
    const [ref, now] = results.map((m) => quantiles(m.get(query) ?? []));
    return { query, base: { p50Ms: ref.p50, p99Ms: ref.p99, n: ref.n }, tree: { p50Ms: now.p50, p99Ms: now.p99, n: now.n }, ratioP50: now.p50 / ref.p50, ratioP99: now.p99 / ref.p99 };
  });
  // The table on stderr (as the other benches report progress); stdout is the JSON result alone.
  for (const row of rows) {
    console.error(
      `${row.query}: base p50 ${row.base.p50Ms.toFixed(1)} / p99 ${row.base.p99Ms.toFixed(1)} ms, working tree ${row.tree.p50Ms.toFixed(1)} / ${row.tree.p99Ms.toFixed(1)} ms ` +
        `(n=${row.tree.n}; ratio p50 ${row.ratioP50.toFixed(2)}, p99 ${row.ratioP99.toFixed(2)})`,
    );
  }
  return { databaseUrl: databaseUrl.replace(/\/\/[^@/]*@/, '//'), base: values.base, rounds, samples, rows };
}

if (require.main === module) {
  main()
    .then((r) => process.stdout.write(`${JSON.stringify(r, null, 2)}\n`))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
