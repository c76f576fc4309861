/** The JSON result of `npm run bench`, the issue 14 targets judged from it, and its Markdown for docs/performance.md. */
import type { MachineInfo } from './common';

export interface SectionOutcome {
  readonly status: 'ok' | 'failed' | 'pending';
  readonly seconds?: number;
  readonly exitCode?: number | null;
  readonly result?: unknown;
  readonly output?: string;
  readonly note?: string;
}

export interface TargetStatus {
  readonly target: string;
  readonly status: 'met' | 'not met' | 'pending';
  readonly measured: string;
}

export interface BenchResult {
  readonly command: string;
  readonly quick: boolean;
  /** Only some benchmarks ran (--only). */
  readonly partial: boolean;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly seconds: number;
  readonly machine: MachineInfo;
  readonly loadAverageAtEnd: number[];
  readonly sections: Record<string, SectionOutcome>;
  targets: TargetStatus[];
  /** Benchmarks re-run later into this result (`--merge`), oldest first. */
  readonly reruns?: readonly BenchRerun[];
}

export interface BenchRerun {
  readonly sections: readonly string[];
  readonly command: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  /** At the start and at the end. */
  readonly loadAverage: readonly (readonly number[])[];
  readonly commit: string;
}

interface CallFigure {
  prompt: string;
  mode: string;
  calls: number;
  sdk: { p50: number; p99: number; callsPerSecond: number; cpuMsPerCall: number };
  client: { p50: number; p99: number; callsPerSecond: number; cpuMsPerCall: number };
  osJournal: { p50: number; p99: number; callsPerSecond: number; cpuMsPerCall: number };
  osJournalThroughputRatio: number;
  osJournalAddedP99Ms: number;
  noJournal: { p50: number; p99: number; callsPerSecond: number; cpuMsPerCall: number };
  noJournalThroughputRatio: number;
  noJournalAddedP99Ms: number;
  throughputRatio: number;
  cpuRatio: number;
  addedP50Ms: number;
  addedP99Ms: number;
  clientMaxEventLoopDelayMs: number;
}
interface CallResult {
  concurrency: number;
  rounds: number;
  figures: CallFigure[];
  rssMb: { idle: number; underLoad: number; after: number };
}
interface QueryFigure {
  database: string;
  rows: number;
  query: string;
  samples: number;
  p50Ms: number;
  p99Ms: number;
  bytes: number;
}
interface QueryResult {
  generator: string;
  sizes: number[];
  figures: QueryFigure[];
  rss: { database: string; rows: number; idleMb: number; underQueriesMb: number; afterQueriesMb: number }[];
  loads: { database: string; rows: number; seconds: number }[];
  notes: string[];
}
interface ScrapeResult {
  figures: { models: number; llmSeries: number; bytes: number; p50Ms: number; p99Ms: number }[];
}
/** What bench/ingestion.ts is expected to report (see the hook in bench/run.ts). */
interface IngestionResult {
  /**
   * Per database and traffic shape: `tasks` (calls grouped by running tasks) and `scattered` (the
   * rollups' worst case). `rawPerSecond` is the bare driver writing the same rows as the recorder
   * (raw rows and summaries), `rawRowsOnlyPerSecond` the bare driver writing the raw rows alone.
   */
  figures?: { database: string; shape?: string; recorderPerSecond: number; rawPerSecond: number; rawRowsOnlyPerSecond?: number }[];
}

const resultOf = <T>(r: BenchResult, name: string): T | null => (r.sections[name]?.status === 'ok' ? ((r.sections[name].result as T | undefined) ?? null) : null);
const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
const ms = (x: number) => (x >= 100 ? `${x.toFixed(0)} ms` : x >= 10 ? `${x.toFixed(1)} ms` : `${x.toFixed(2)} ms`);
const count = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000} M` : n >= 1_000 ? `${n / 1_000} k` : String(n));
const kb = (bytes: number) => (bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${(bytes / 1024).toFixed(1)} KB`);

/** p99 limits at 10 M rows, by query (issue 14, "Done when"). */
const QUERY_LIMITS: Record<string, number> = {
  'overall 30 d': 50,
  'overall 90 d': 50,
  'user 30 d': 50,
  'timeseries 30 d by model': 50,
  task: 5,
  'task metrics 30 d': 100,
};

export function targetStatuses(r: BenchResult): TargetStatus[] {
  const out: TargetStatus[] = [];
  const calls = resultOf<CallResult>(r, 'call-overhead');
  for (const prompt of ['small', '80k']) {
    const conc = calls?.figures.find((f) => f.prompt === prompt && f.mode === 'concurrent');
    out.push({
      target: `LlmClient ≥ 95 % of the bare SDK's throughput, 50 concurrent, ${prompt} prompt`,
      status: conc ? (conc.throughputRatio >= 0.95 ? 'met' : 'not met') : 'pending',
      measured: conc ? `${pct(conc.throughputRatio)} (CPU per call: SDK ÷ client = ${pct(conc.cpuRatio)}; with USAGE_JOURNAL_SYNC=os ${pct(conc.osJournalThroughputRatio)})` : 'not measured',
    });
    const seq = calls?.figures.find((f) => f.prompt === prompt && f.mode === 'sequential');
    out.push({
      target: `LlmClient adds ≤ 0.5 ms at p99, one call at a time, ${prompt} prompt`,
      status: seq ? (seq.addedP99Ms <= 0.5 ? 'met' : 'not met') : 'pending',
      measured: seq ? `${seq.addedP99Ms.toFixed(2)} ms at p99 (${seq.addedP50Ms.toFixed(2)} ms at p50; with USAGE_JOURNAL_SYNC=os ${seq.osJournalAddedP99Ms.toFixed(2)} ms at p99)` : 'not measured',
    });
  }
  const queries = resultOf<QueryResult>(r, 'usage-queries');
  const biggest = queries ? Math.max(...queries.sizes) : 0;
  for (const database of ['sqlite', 'postgres']) {
    for (const [query, limit] of Object.entries(QUERY_LIMITS)) {
      const f = queries?.figures.find((x) => x.database === database && x.query === query && x.rows === 10_000_000);
      const atBiggest = queries?.figures.find((x) => x.database === database && x.query === query && x.rows === biggest);
      out.push({
        target: `${query} p99 ≤ ${limit} ms at 10 M rows, ${database === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`,
        status: f ? (f.p99Ms <= limit ? 'met' : 'not met') : 'pending',
        measured: f ? ms(f.p99Ms) : atBiggest ? `not run at 10 M (${ms(atBiggest.p99Ms)} at ${count(biggest)})` : 'not measured',
      });
    }
  }
  const ingestion = resultOf<IngestionResult>(r, 'ingestion');
  for (const database of ['sqlite', 'postgres']) {
    const shapes = ['tasks', 'scattered']
      .map((shape) => ingestion?.figures?.find((x) => x.database === database && (x.shape ?? 'tasks') === shape))
      .filter((f): f is NonNullable<typeof f> => f !== undefined);
    const describe = (f: (typeof shapes)[number]) =>
      `${pct(f.recorderPerSecond / f.rawPerSecond)} (${Math.round(f.recorderPerSecond)} vs ${Math.round(f.rawPerSecond)} records/s) with ` +
      `${f.shape === 'scattered' ? 'calls scattered over users and models' : 'task traffic'}` +
      (f.rawRowsOnlyPerSecond ? ` (${pct(f.recorderPerSecond / f.rawRowsOnlyPerSecond)} of the driver writing the raw rows alone)` : '');
    out.push({
      target: `ingestion through the recorder ≥ 80 % of the raw driver writing the same rows, ${database === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`,
      status: shapes.length > 0 ? (shapes.every((f) => f.recorderPerSecond / f.rawPerSecond >= 0.8) ? 'met' : 'not met') : 'pending',
      measured: shapes.length > 0 ? shapes.map(describe).join('; ') : (r.sections.ingestion?.note ?? 'not measured'),
    });
  }
  if (r.quick && !r.partial) out.push({ target: '`npm run bench -- --quick` under two minutes', status: r.seconds < 120 ? 'met' : 'not met', measured: `${r.seconds} s` });
  return out;
}

export const GENERATED_START = '<!-- bench:generated:start (npm run bench rewrites this part) -->';
export const GENERATED_END = '<!-- bench:generated:end -->';

/** docs/performance.md with its generated part replaced (or added before the first hand-run section). */
export function renderPerformanceSection(doc: string, r: BenchResult): string {
  const section = `${GENERATED_START}\n${renderResult(r)}\n${GENERATED_END}`;
  const a = doc.indexOf(GENERATED_START);
  const b = doc.indexOf(GENERATED_END);
  if (a >= 0 && b > a) return doc.slice(0, a) + section + doc.slice(b + GENERATED_END.length);
  const at = doc.indexOf('\n## ', doc.indexOf('## Targets') + 1);
  return at < 0 ? `${doc}\n${section}\n` : `${doc.slice(0, at + 1)}${section}\n${doc.slice(at)}`;
}

function table(head: string[], rows: (string | number)[][]): string {
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

function renderResult(r: BenchResult): string {
  const m = r.machine;
  const parts: string[] = [];
  parts.push(`## Issue 14 figures (\`npm run bench\`, one run)`);
  parts.push(
    [
      `- **Date**: ${r.startedAt} to ${r.finishedAt} (${Math.round(r.seconds / 60)} min)`,
      `- **Machine**: ${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB; load average ${m.loadAverage.join(' / ')} at the start, ${r.loadAverageAtEnd.join(' / ')} at the end (other work shares the machine)`,
      `- **Versions**: Node ${m.node}; ${Object.entries(m.packages).map(([p, v]) => `${p} ${v}`).join(', ')}; commit ${m.commit}`,
      `- **Command**: \`${r.command}\`; the full result: \`bench/results/latest.json\``,
      ...(r.reruns ?? []).map(
        (x) =>
          `- **Re-run later into this result**: ${x.sections.map((n) => `\`${n}\``).join(', ')} from ${x.startedAt} to ${x.finishedAt} (\`${x.command}\`, commit ${x.commit}; load average ${x.loadAverage.map((l) => l.join(' / ')).join(' at the start, ')} at the end); its figures below replace that run's`,
      ),
    ].join('\n'),
  );
  parts.push('### Targets in this run');
  parts.push(table(['Target', 'Status', 'Measured'], r.targets.map((t) => [t.target, t.status === 'met' ? '**met**' : t.status === 'not met' ? '**not met**' : 'pending', t.measured])));

  const calls = resultOf<CallResult>(r, 'call-overhead');
  if (calls) {
    parts.push('### Call overhead: LlmClient against the bare openai SDK (`bench/call-overhead.ts`)');
    parts.push(
      `Both call the same local OpenAI-compatible server (its own process, answering at once); LlmClient is the real service's (AppModule: admission and quotas, the journal, the recorder and its sinks on SQLite). ` +
        `One call at a time and streamed: latency per call; 50 at a time: per batch of 50. Median of ${calls.rounds} rounds, alternating which goes first. ` +
        `CPU is this process's (all threads, so the token-count worker too) per call. ` +
        `LlmClient runs with the default \`USAGE_JOURNAL_SYNC=disk\` (a group-committed fdatasync of the call's journal entry before each request, by design); the last columns are the same with \`USAGE_JOURNAL_SYNC=os\` (the entry written, its fdatasync off the call's path) and with \`USAGE_JOURNAL=off\`: the differences are what the journal costs.`,
    );
    parts.push(
      table(
        ['Prompt', 'Mode', 'Calls', 'SDK p50 / p99', 'LlmClient p50 / p99', 'Added p50 / p99', 'Throughput SDK → LlmClient', 'Ratio', 'CPU per call SDK → LlmClient', 'Longest event-loop stall (LlmClient)', 'Journal os: p50 / p99', 'Journal os: added p99, ratio', 'Journal off: p50 / p99', 'Journal off: added p99, ratio'],
        calls.figures.map((f) => [
          f.prompt === '80k' ? '80,000 chars' : 'small',
          f.mode === 'concurrent' ? '50 concurrent' : f.mode === 'sequential' ? 'one at a time' : 'streamed, one at a time',
          f.calls,
          `${ms(f.sdk.p50)} / ${ms(f.sdk.p99)}`,
          `${ms(f.client.p50)} / ${ms(f.client.p99)}`,
          `${f.addedP50Ms.toFixed(2)} / ${f.addedP99Ms.toFixed(2)} ms`,
          `${Math.round(f.sdk.callsPerSecond)} → ${Math.round(f.client.callsPerSecond)} calls/s`,
          pct(f.throughputRatio),
          `${f.sdk.cpuMsPerCall.toFixed(2)} → ${f.client.cpuMsPerCall.toFixed(2)} ms`,
          ms(f.clientMaxEventLoopDelayMs),
          `${ms(f.osJournal.p50)} / ${ms(f.osJournal.p99)}`,
          `${f.osJournalAddedP99Ms.toFixed(2)} ms, ${pct(f.osJournalThroughputRatio)}`,
          `${ms(f.noJournal.p50)} / ${ms(f.noJournal.p99)}`,
          `${f.noJournalAddedP99Ms.toFixed(2)} ms, ${pct(f.noJournalThroughputRatio)}`,
        ]),
      ),
    );
  }

  const queries = resultOf<QueryResult>(r, 'usage-queries');
  if (queries) {
    parts.push('### Usage queries over HTTP (`bench/usage-queries.ts`)');
    parts.push(
      `The built service (\`node main.js\`, its own process) on a data set of 90 days, 50 models, 1,000 users and up to 100,000 tasks (generator: \`${queries.generator}\`), ` +
        `a fresh database for each size. p50 / p99 over the samples shown (n×: each query is sampled for at most 45 s per size, after one warm-up request below 1 M rows), and the size of the response body.`,
    );
    const names = [...new Set(queries.figures.map((f) => f.query))];
    const rows: string[][] = [];
    for (const database of ['sqlite', 'postgres']) {
      for (const rowsCount of queries.sizes) {
        const fs = queries.figures.filter((f) => f.database === database && f.rows === rowsCount);
        if (fs.length === 0) continue;
        rows.push([
          database === 'sqlite' ? 'SQLite' : 'PostgreSQL',
          count(rowsCount),
          ...names.map((n) => {
            const f = fs.find((x) => x.query === n);
            return f ? `${ms(f.p50Ms)} / ${ms(f.p99Ms)} (${f.samples}×, ${kb(f.bytes)})` : '—';
          }),
        ]);
      }
    }
    parts.push(table(['Database', 'Rows', ...names.map((n) => `${n} p50 / p99`)], rows));
    parts.push(
      table(
        ['Database', 'Rows', 'Load time', 'Service RSS idle', 'under the queries (peak)', 'after them'],
        queries.rss.map((x) => [x.database === 'sqlite' ? 'SQLite' : 'PostgreSQL', count(x.rows), `${queries.loads.find((l) => l.database === x.database && l.rows === x.rows)?.seconds ?? '?'} s`, `${x.idleMb} MB`, `${x.underQueriesMb} MB`, `${x.afterQueriesMb} MB`]),
      ),
    );
    if (queries.notes.length) parts.push(queries.notes.map((n) => `- ${n}`).join('\n'));
  }

  const scrape = resultOf<ScrapeResult>(r, 'metrics-scrape');
  if (scrape) {
    parts.push('### `/metrics` as models grow (`bench/metrics-scrape.ts`)');
    parts.push('The real app over HTTP, OpenMetrics (what Prometheus asks for); each model has successes, errors and streamed calls, so every LLM series a model can have.');
    parts.push(table(['Models', 'LLM series', 'Body', 'Scrape p50 / p99'], scrape.figures.map((f) => [f.models, f.llmSeries, kb(f.bytes), `${ms(f.p50Ms)} / ${ms(f.p99Ms)}`])));
  }
  if (calls) {
    parts.push(`RSS of the call benchmark's process (the service in-process): idle ${calls.rssMb.idle} MB, under the call load ${calls.rssMb.underLoad} MB, after it ${calls.rssMb.after} MB.`);
  }

  const others = Object.entries(r.sections).filter(([n]) => !['call-overhead', 'usage-queries', 'metrics-scrape'].includes(n));
  parts.push('### The other benchmarks in this run');
  parts.push(
    table(
      ['Benchmark', 'Status', 'Time', 'Last line'],
      others.map(([n, s]) => [
        `\`bench/${n}.ts\``,
        s.status,
        s.seconds !== undefined ? `${s.seconds} s` : '—',
        (s.note ?? s.output?.split('\n').filter(Boolean).pop() ?? '').replace(/\|/g, '\\|').slice(0, 160),
      ]),
    ),
  );
  return parts.join('\n\n');
}
