/**
 * `npm run bench`: every benchmark, each in its own process, one JSON result, and the figures
 * part of docs/performance.md regenerated from it (between its `bench:generated` markers), each
 * figure beside its reference from the same run.
 *
 *   npm run bench                 # full sizes (about an hour on the 2-core dev machine):
 *                                 #   writes bench/results/latest.json and docs/performance.md
 *   npm run bench -- --quick      # everything at a small size, in under two minutes (CI):
 *                                 #   writes bench/results/quick.json only
 *   npm run bench -- --only call-overhead,metrics-scrape [--quick] [--docs]
 *   npm run bench -- --only ingestion --merge   # re-runs those benchmarks in place in
 *                                 #   bench/results/latest.json (the rest kept, the re-run named
 *                                 #   with its date) and regenerates docs/performance.md from it
 *   BENCH_MAX_ROWS=1000000 npm run bench   # the query benchmark stops at 1 M rows
 *
 * Timing is never asserted: a run fails only when a benchmark itself fails.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { machineInfo, ROOT, round, runTs } from './support/common';
import { renderPerformanceSection, targetStatuses, type BenchResult } from './support/report';

interface Section {
  readonly name: string;
  readonly file: string;
  /** Extra arguments, by size. */
  readonly args: (quick: boolean) => string[];
  /** Writes its JSON result to --out (the harness's own sections); the others are text. */
  readonly json: boolean;
  readonly timeoutMs: number;
}

const SECTIONS: Section[] = [
  { name: 'call-overhead', file: 'bench/call-overhead.ts', args: (q) => (q ? ['--quick'] : []), json: true, timeoutMs: 40 * 60_000 },
  { name: 'metrics-scrape', file: 'bench/metrics-scrape.ts', args: (q) => (q ? ['--quick'] : []), json: true, timeoutMs: 10 * 60_000 },
  { name: 'usage-queries', file: 'bench/usage-queries.ts', args: (q) => (q ? ['--quick'] : []), json: true, timeoutMs: 180 * 60_000 },
  // `bench/ingestion.ts [--quick] --out <file>` writes JSON with `figures: [{ database, shape,
  // recorderPerSecond, rawPerSecond }, ...]` (see IngestionResult in support/report.ts, which judges
  // the ≥ 80 % target from it); PostgreSQL when BENCH_POSTGRES_URL or TEST_DATABASE_URL is set.
  { name: 'ingestion', file: 'bench/ingestion.ts', args: (q) => (q ? ['--quick'] : []), json: true, timeoutMs: 60 * 60_000 },
  { name: 'usage-journal', file: 'bench/usage-journal.ts', args: (q) => (q ? ['--quick'] : []), json: false, timeoutMs: 20 * 60_000 },
  { name: 'sandbox-command', file: 'bench/sandbox-command.ts', args: (q) => [q ? '5' : '40'], json: false, timeoutMs: 10 * 60_000 },
  { name: 'billing-csv-stream', file: 'bench/billing-csv-stream.ts', args: (q) => [q ? '20000' : '1000000'], json: false, timeoutMs: 30 * 60_000 },
  { name: 'gateway', file: 'bench/gateway.ts', args: (q) => (q ? ['--quick'] : []), json: false, timeoutMs: 30 * 60_000 },
  { name: 'dashboard', file: 'bench/dashboard.ts', args: (q) => (q ? ['--quick'] : []), json: false, timeoutMs: 30 * 60_000 },
];

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const onlyAt = argv.indexOf('--only');
  const only = onlyAt >= 0 ? new Set(argv[onlyAt + 1].split(',')) : null;
  const merge = argv.includes('--merge');
  if (merge && (only === null || quick)) throw new Error('--merge re-runs the benchmarks named by --only at full size into bench/results/latest.json');
  const writeDocs = argv.includes('--docs') || merge || (!quick && only === null);
  const env = ['BENCH_MAX_ROWS', 'BENCH_POSTGRES_ADMIN_URL'].filter((k) => process.env[k]).map((k) => `${k}=${process.env[k]} `).join('');
  const command = `${env}npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`;
  const started = new Date();
  const machineAtStart = machineInfo();
  const sections: BenchResult['sections'] = {};
  const scratch = join(tmpdir(), `asa-bench-run-${process.pid}`);
  mkdirSync(scratch, { recursive: true });
  let failed = 0;
  for (const s of SECTIONS) {
    if (only && !only.has(s.name)) continue;
    if (!existsSync(join(ROOT, s.file))) {
      sections[s.name] = { status: 'pending', note: `${s.file} is not in this checkout (it comes with the rollups work of issue 14)` };
      console.log(`- ${s.name}: pending (${s.file} not here)`);
      continue;
    }
    const out = join(scratch, `${s.name}.json`);
    console.log(`- ${s.name} ...`);
    const r = await runTs(s.file, [...s.args(quick), ...(s.json ? ['--out', out] : [])], s.timeoutMs);
    const tail = r.output.split('\n').filter(Boolean).slice(-40).join('\n');
    if (r.code !== 0) {
      failed++;
      sections[s.name] = { status: 'failed', seconds: r.seconds, exitCode: r.code, output: tail };
      console.log(`  failed (exit ${r.code}) after ${r.seconds} s:\n${tail}`);
      continue;
    }
    const result = s.json && existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as unknown) : null;
    sections[s.name] = { status: 'ok', seconds: r.seconds, ...(result ? { result } : { output: tail }) };
    console.log(`  done in ${r.seconds} s`);
  }
  rmSync(scratch, { recursive: true, force: true });

  const finished = new Date();
  let result: BenchResult = {
    command,
    quick,
    partial: only !== null,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    seconds: round((finished.getTime() - started.getTime()) / 1000, 1),
    machine: machineAtStart,
    loadAverageAtEnd: machineInfo().loadAverage,
    sections,
    targets: [],
  };
  const dir = join(ROOT, 'bench/results');
  if (merge) {
    // The last full run with these sections replaced; the header names what was re-run and when.
    const latest = JSON.parse(readFileSync(join(dir, 'latest.json'), 'utf8')) as BenchResult;
    const rerun = { sections: Object.keys(sections), command, startedAt: result.startedAt, finishedAt: result.finishedAt, loadAverage: [machineAtStart.loadAverage, result.loadAverageAtEnd], commit: machineAtStart.commit };
    result = { ...latest, sections: { ...latest.sections, ...sections }, reruns: [...(latest.reruns ?? []), rerun] };
  }
  result.targets = targetStatuses(result);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, merge ? 'latest.json' : only ? 'partial.json' : quick ? 'quick.json' : 'latest.json');
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nwrote ${file} (${result.seconds} s)`);
  for (const t of result.targets) console.log(`  ${t.status.padEnd(8)} ${t.target}: ${t.measured}`);
  if (writeDocs) {
    const docs = join(ROOT, 'docs/performance.md');
    writeFileSync(docs, renderPerformanceSection(readFileSync(docs, 'utf8'), result));
    console.log(`updated ${docs}`);
  }
  if (failed > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
