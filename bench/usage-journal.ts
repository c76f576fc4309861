/**
 * Measures the usage journal (see README, "Failures and shutdown"):
 *  1. the durable write of a call's start entry (one write + fdatasync per group): p50/p99,
 *     one call at a time and 50 calls starting together;
 *  2. what the journal adds to an LLM call made through LlmClient and the real openai SDK
 *     against the local simulator (no delay): journal on vs off, one call at a time and 50 at once.
 *
 *   npx ts-node --transpile-only bench/usage-journal.ts [folder on the disk to measure] [--quick]
 *
 * `--quick` (as `npm run bench -- --quick` runs it) does a tenth of the work.
 *
 * The calls' records go to the journal (as the recorder does) and nowhere else: the sinks are
 * not what is measured here.
 */
import 'reflect-metadata';
import { trace } from '@opentelemetry/api';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import OpenAI from 'openai';
import { LlmClient, LlmClientDeps } from '../src/modules/llm/llm-client';
import { PricingService } from '../src/modules/llm/pricing/pricing.service';
import { TokenEstimator } from '../src/modules/llm/token-estimator';
import type { AppendDurability } from '../src/modules/usage/journal/group-commit-file';
import type { CallStart } from '../src/modules/usage/journal/journal-entry';
import { UsageJournal } from '../src/modules/usage/journal/usage-journal.service';
import type { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { startOpenAiCompatibleServer } from '../src/simulator/openai-compatible-server';

const QUICK = process.argv.includes('--quick');
const parent = process.argv.slice(2).find((a) => !a.startsWith('--')) ?? tmpdir();
/** A count of work, a tenth of it with --quick. */
const n = (full: number) => (QUICK ? Math.max(1, Math.round(full / 10)) : full);
// One counter for every client: its worker thread loads the encodings once.
const estimator = new TokenEstimator();

function quantiles(ms: number[]): { p50: number; p99: number; mean: number } {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  return { p50: q(0.5), p99: q(0.99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}
const fmt = (x: { p50: number; p99: number; mean: number }) => `p50 ${x.p50.toFixed(3)} ms, p99 ${x.p99.toFixed(3)} ms, mean ${x.mean.toFixed(3)} ms`;

function start(): CallStart {
  return {
    id: randomUUID(),
    createdAtMs: Date.now(),
    taskId: randomUUID(),
    userId: 'bench-user',
    provider: 'openai',
    operation: 'chat',
    requestedModel: 'gpt-4o-mini',
    streamed: false,
    traceId: null,
    promptTokens: 1234,
  };
}

/** The journal off, or on with a start entry waited for on the disk (the default) or with the operating system. */
type JournalMode = 'off' | AppendDurability;

async function openJournal(mode: JournalMode): Promise<{ journal: UsageJournal; done: () => Promise<void> }> {
  const dir = mkdtempSync(join(parent, 'asa-journal-bench-'));
  const enabled = mode !== 'off';
  const journal = new UsageJournal({ journal: { enabled, dir, sync: mode === 'off' ? 'disk' : mode } });
  if (enabled) await journal.open();
  return {
    journal,
    done: async () => {
      await journal.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startEntries(mode: AppendDurability): Promise<void> {
  const { journal, done } = await openJournal(mode);
  journal.maxSegmentBytes = Number.MAX_SAFE_INTEGER; // one file, so its write count is the whole story
  const seq: number[] = [];
  for (let i = 0; i < n(2000); i++) {
    const t0 = performance.now();
    await journal.started(start());
    seq.push(performance.now() - t0);
  }
  // The disk flushes much faster back to back than after a pause: measure both.
  const paused: number[] = [];
  for (let i = 0; i < n(500); i++) {
    await new Promise((r) => setTimeout(r, 1));
    const t0 = performance.now();
    await journal.started(start());
    paused.push(performance.now() - t0);
  }
  const conc: number[] = [];
  const file = (journal as unknown as { active: { file: { stats: { groups: number; entries: number } } } }).active.file;
  const before = { ...file.stats };
  for (let round = 0; round < n(100); round++) {
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        const t0 = performance.now();
        await journal.started(start());
        conc.push(performance.now() - t0);
      }),
    );
  }
  const groups = file.stats.groups - before.groups;
  await done();
  const what = mode === 'disk' ? 'on the disk' : 'with the OS';
  console.log(`start entry ${what}, sequential, back to back (${n(2000)}): ${fmt(quantiles(seq))}`);
  console.log(`start entry ${what}, sequential, 1 ms apart (${n(500)}):     ${fmt(quantiles(paused))}`);
  console.log(`start entry ${what}, 50 concurrent (${n(100)} x 50):        ${fmt(quantiles(conc))}, ${groups} write groups for ${n(100) * 50} entries`);
}

async function calls(baseURL: string, mode: JournalMode, concurrency: number, rounds: number): Promise<{ perCall: ReturnType<typeof quantiles>; wallMs: number }> {
  const { journal, done } = await openJournal(mode);
  const recorder = { record: async (r: Parameters<UsageRecorder['record']>[0]) => void journal.ended(r) } as unknown as UsageRecorder;
  const deps: LlmClientDeps = {
    openai: new OpenAI({ apiKey: 'bench', baseURL, maxRetries: 0 }),
    config: { apiKey: 'bench', baseUrl: baseURL, timeoutMs: 30_000, maxRetries: 0, provider: 'openai', pricingFile: '/nonexistent', pricingFileRequired: false, unpricedUnderBudget: 'refuse' },
    pricing: new PricingService({ provider: 'openai', pricingFile: '/nonexistent' }),
    estimator,
    recorder,
    journal,
    policies: [],
    spend: { spentNanos: async () => 0n } as never,
    tracer: trace.getTracer('bench'),
    server: null,
  };
  const client = new LlmClient(deps, null, 'bench-user');
  const ask = () => client.chat({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Fix the authentication bug in login.ts, please.' }] });
  for (let i = 0; i < n(50); i++) await ask(); // warm-up: connections, JIT
  const perCall: number[] = [];
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        const t = performance.now();
        await ask();
        perCall.push(performance.now() - t);
      }),
    );
  }
  const wallMs = performance.now() - t0;
  await journal.durable();
  await done();
  return { perCall: quantiles(perCall), wallMs };
}

async function main(): Promise<void> {
  console.log(`journal folder on: ${parent}`);
  await startEntries('disk');
  await startEntries('os');
  const sim = await startOpenAiCompatibleServer({ respond: () => ({ content: 'ok', usage: { prompt_tokens: 20, completion_tokens: 1 } }) });
  type Run = Awaited<ReturnType<typeof calls>>;
  const modes: JournalMode[] = ['off', 'os', 'disk'];
  try {
    for (const [concurrency, rounds] of [[1, n(1000)], [50, n(40)]] as const) {
      // Alternate the modes three times and keep each one's best run: the machine is shared and noisy.
      const best = new Map<JournalMode, Run>();
      for (let i = 0; i < 3; i++) {
        for (const mode of modes) {
          const r = await calls(sim.baseUrl, mode, concurrency, rounds);
          const kept = best.get(mode);
          if (!kept || r.wallMs < kept.wallMs) best.set(mode, r);
        }
      }
      const off = best.get('off')!;
      const total = concurrency * rounds;
      console.log(`\nLLM call against the simulator, ${concurrency} at a time (${total} calls, best of 3):`);
      for (const mode of modes) {
        const r = best.get(mode)!;
        const label = mode === 'off' ? 'journal off      ' : `USAGE_JOURNAL_SYNC=${mode.padEnd(4)}`;
        const ratio = mode === 'off' ? '' : `; ÷ off: p50 ×${(r.perCall.p50 / off.perCall.p50).toFixed(2)}, p99 ×${(r.perCall.p99 / off.perCall.p99).toFixed(2)}, throughput ×${(off.wallMs / r.wallMs).toFixed(2)}`;
        console.log(`  ${label}: ${fmt(r.perCall)}, ${(total / (r.wallMs / 1000)).toFixed(0)} calls/s${ratio}`);
      }
    }
  } finally {
    await sim.close();
    await estimator.onModuleDestroy();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
