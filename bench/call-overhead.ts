/**
 * What LlmClient adds to an LLM call: the real service's LlmClient (AppModule: admission with
 * quotas, the journal, the usage recorder and its sinks on a scratch SQLite file) against the bare
 * `openai` SDK, both calling the same local OpenAI-compatible server, which runs in its own
 * process and answers at once. Small and 80,000-character prompts (the bug-fix agent's size);
 * one call at a time (added p50/p99), 50 at a time (throughput), and streamed one at a time.
 * Rounds alternate which of the two goes first, and each figure is the median over rounds.
 * Two more kinds, each a second app on its own SQLite file, show what the crash journal costs:
 * LlmClient with USAGE_JOURNAL_SYNC=os (the start entry written, its fdatasync off the call's path)
 * and with USAGE_JOURNAL=off (no journal).
 *
 *   npx ts-node --transpile-only bench/call-overhead.ts [--quick] [--out result.json]
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Bench } from 'tinybench';
import { benchServiceEnv, firstJsonLine, median, round, rssMb, runSection, spawnTs } from './support/common';

const CONCURRENCY = 50;
const LARGE_PROMPT_CHARS = 80_000;

type Kind = 'sdk' | 'client' | 'osJournal' | 'noJournal';
const KINDS: Kind[] = ['sdk', 'client', 'osJournal', 'noJournal'];
type Mode = 'sequential' | 'concurrent' | 'streamed';

export interface CallOverheadFigure {
  readonly prompt: 'small' | '80k';
  readonly mode: Mode;
  readonly calls: number;
  /** Median over rounds of each kind's per-call (or per-batch of 50) latency, ms. */
  readonly sdk: { p50: number; p99: number; callsPerSecond: number; cpuMsPerCall: number };
  readonly client: { p50: number; p99: number; callsPerSecond: number; cpuMsPerCall: number };
  /** LlmClient with USAGE_JOURNAL_SYNC=os. */
  readonly osJournal: { p50: number; p99: number; callsPerSecond: number; cpuMsPerCall: number };
  readonly osJournalThroughputRatio: number;
  readonly osJournalAddedP99Ms: number;
  /** LlmClient with USAGE_JOURNAL=off. */
  readonly noJournal: { p50: number; p99: number; callsPerSecond: number; cpuMsPerCall: number };
  readonly noJournalThroughputRatio: number;
  readonly noJournalAddedP99Ms: number;
  /** client ÷ sdk throughput (wall clock: moves with the machine's other load). */
  readonly throughputRatio: number;
  /**
   * sdk ÷ client CPU time per call (this process, all its threads, so the token-count worker too):
   * the throughput ratio a machine with no other load would give when the process is CPU-bound.
   */
  readonly cpuRatio: number;
  readonly addedP50Ms: number;
  readonly addedP99Ms: number;
  /** Longest event-loop delay seen while the client ran this scenario, ms. */
  readonly clientMaxEventLoopDelayMs: number;
}

/** A prompt like the agent's: source files with line numbers, then the bug report (deterministic). */
function largePrompt(): string {
  const lines: string[] = [];
  for (let i = 0; lines.join('\n').length < LARGE_PROMPT_CHARS; i++) {
    lines.push(`${String(i + 1).padStart(4)} | export function handler${i}(req: Request, limit = ${i * 7 % 100}): number { return req.items.filter((x) => x.size > limit).length; }`);
  }
  return `Fix the bug described below.\n\n${lines.join('\n').slice(0, LARGE_PROMPT_CHARS)}\n\nBug: handler12 counts items equal to the limit.`;
}

async function main(quick: boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'asa-bench-calls-'));
  const server = spawnTs('bench/support/fake-llm.ts');
  const { baseUrl } = await firstJsonLine<{ baseUrl: string }>(server);
  // Read when the app's configuration loads, at boot.
  Object.assign(process.env, benchServiceEnv(dir), { OPENAI_BASE_URL: baseUrl, OPENAI_API_KEY: 'sk-bench', OPENAI_MAX_RETRIES: '0', LOG_FORMAT: 'pretty' });
  const { NestFactory } = await import('@nestjs/core');
  const { default: OpenAI } = await import('openai');
  const { AppModule } = await import('../src/app.module');
  const { LlmClientFactory } = await import('../src/modules/llm/llm-client.factory');
  // One app per journal setting, each on its own SQLite file and journal folder.
  const apps: { close(): Promise<void> }[] = [];
  const appWith = async (name: string, journal: Record<string, string>, logger: ('error' | 'warn')[]) => {
    Object.assign(process.env, journal, { DATABASE_URL: `sqlite:${join(dir, `${name}.db`)}`, USAGE_JOURNAL_DIR: join(dir, `journal-${name}`) });
    const app = await NestFactory.createApplicationContext(AppModule, { logger });
    apps.push(app);
    return app.get(LlmClientFactory).forUser('bench-user');
  };
  const clients = {
    client: await appWith('bench', { USAGE_JOURNAL: 'on', USAGE_JOURNAL_SYNC: 'disk' }, ['error', 'warn']),
    osJournal: await appWith('bench-os-journal', { USAGE_JOURNAL: 'on', USAGE_JOURNAL_SYNC: 'os' }, ['error']),
    noJournal: await appWith('bench-no-journal', { USAGE_JOURNAL: 'off' }, ['error']),
  };
  const sdk = new OpenAI({ apiKey: 'sk-bench', baseURL: baseUrl, maxRetries: 0 });
  const rssIdle = rssMb();

  const prompts = { small: [{ role: 'user' as const, content: 'Say hi in two words.' }], '80k': [{ role: 'user' as const, content: largePrompt() }] };
  const model = 'gpt-4o-mini';
  const call = async (kind: Kind, prompt: keyof typeof prompts, streamed: boolean) => {
    const params = { model, messages: prompts[prompt], max_tokens: 16 };
    if (!streamed) {
      if (kind === 'sdk') await sdk.chat.completions.create(params);
      else await clients[kind].chat(params);
      return;
    }
    const stream =
      kind === 'sdk'
        ? await sdk.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } })
        : clients[kind].chatStream(params);
    for await (const chunk of stream) void chunk;
  };

  const rounds = quick ? 2 : 5;
  const perRound = quick ? { sequential: 40, concurrent: 3, streamed: 30 } : { sequential: 400, concurrent: 20, streamed: 250 };
  const figures: CallOverheadFigure[] = [];
  let rssUnderLoad = rssIdle;
  for (const prompt of ['small', '80k'] as const) {
    for (const mode of ['sequential', 'concurrent', 'streamed'] as Mode[]) {
      const iterations = perRound[mode];
      const batch = mode === 'concurrent' ? CONCURRENCY : 1;
      const byKind: Record<Kind, { p50: number[]; p99: number[]; cps: number[]; cpu: number[] }> = {
        sdk: { p50: [], p99: [], cps: [], cpu: [] },
        client: { p50: [], p99: [], cps: [], cpu: [] },
        osJournal: { p50: [], p99: [], cps: [], cpu: [] },
        noJournal: { p50: [], p99: [], cps: [], cpu: [] },
      };
      let maxDelay = 0;
      for (let r = 0; r < rounds; r++) {
        const order: Kind[] = KINDS.map((_, i, all) => all[(i + r) % all.length]);
        for (const kind of order) {
          const once = async () => {
            if (batch === 1) await call(kind, prompt, mode === 'streamed');
            else await Promise.all(Array.from({ length: batch }, () => call(kind, prompt, false)));
          };
          for (let w = 0; w < Math.ceil(iterations / 10); w++) await once(); // warm-up, outside the CPU figure
          const bench = new Bench({ iterations, time: 0, warmup: false });
          bench.add(kind, once);
          const delay = monitorEventLoopDelay({ resolution: 1 });
          delay.enable();
          const cpu0 = process.cpuUsage();
          await bench.run();
          const cpu = process.cpuUsage(cpu0);
          delay.disable();
          byKind[kind].cpu.push((cpu.user + cpu.system) / 1000 / (iterations * batch));
          if (kind === 'client') maxDelay = Math.max(maxDelay, delay.max / 1e6);
          const result = bench.tasks[0].result;
          if (result.state !== 'completed') throw new Error(`${prompt} ${mode} ${kind}: ${result.state}${'error' in result ? `: ${String(result.error)}` : ''}`);
          byKind[kind].p50.push(result.latency.p50);
          byKind[kind].p99.push(result.latency.p99);
          byKind[kind].cps.push((batch * 1000) / result.latency.mean);
        }
        rssUnderLoad = Math.max(rssUnderLoad, rssMb());
      }
      const summary = (k: Kind) => ({
        p50: round(median(byKind[k].p50)),
        p99: round(median(byKind[k].p99)),
        callsPerSecond: round(median(byKind[k].cps), 1),
        cpuMsPerCall: round(median(byKind[k].cpu)),
      });
      const sdkFig = summary('sdk');
      const clientFig = summary('client');
      figures.push({
        prompt,
        mode,
        calls: rounds * iterations * batch,
        sdk: sdkFig,
        client: clientFig,
        throughputRatio: round(median(byKind.client.cps.map((c, i) => c / byKind.sdk.cps[i])), 3),
        cpuRatio: round(median(byKind.sdk.cpu.map((c, i) => c / byKind.client.cpu[i])), 3),
        addedP50Ms: round(median(byKind.client.p50.map((c, i) => c - byKind.sdk.p50[i]))),
        addedP99Ms: round(median(byKind.client.p99.map((c, i) => c - byKind.sdk.p99[i]))),
        osJournal: summary('osJournal'),
        osJournalThroughputRatio: round(median(byKind.osJournal.cps.map((c, i) => c / byKind.sdk.cps[i])), 3),
        osJournalAddedP99Ms: round(median(byKind.osJournal.p99.map((c, i) => c - byKind.sdk.p99[i]))),
        noJournal: summary('noJournal'),
        noJournalThroughputRatio: round(median(byKind.noJournal.cps.map((c, i) => c / byKind.sdk.cps[i])), 3),
        noJournalAddedP99Ms: round(median(byKind.noJournal.p99.map((c, i) => c - byKind.sdk.p99[i]))),
        clientMaxEventLoopDelayMs: round(maxDelay, 1),
      });
      console.error(`${prompt} ${mode}: ${JSON.stringify(figures[figures.length - 1])}`);
    }
  }
  const rssAfter = rssMb();
  for (const app of apps) await app.close();
  server.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
  return { concurrency: CONCURRENCY, largePromptChars: LARGE_PROMPT_CHARS, model, rounds, figures, rssMb: { idle: rssIdle, underLoad: rssUnderLoad, after: rssAfter } };
}

if (require.main === module) runSection(main);
