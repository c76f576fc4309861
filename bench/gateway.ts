/**
 * Measures what the OpenAI-compatible gateway adds to an LLM call (README, "Use it as a
 * gateway"; docs/performance.md, "Gateway"): latency and throughput of the same chat completion
 * sent
 *  - straight to the upstream (the local simulator, in its own process),
 *  - through asa-backend's /v1 (the real service, in its own process: API key check, admission,
 *    journal, pricing, usage record on SQLite),
 *  - through @portkey-ai/gateway (npm; its own process, pointed at the same simulator with
 *    x-portkey-custom-host),
 * one request at a time and from 50 concurrent clients, plain and streamed, all in one run.
 * Every request goes to 127.0.0.1; every loop is bounded in count.
 *
 *   npx ts-node --transpile-only bench/gateway.ts [--quick]
 *   npx ts-node --transpile-only bench/gateway.ts --large-prompt [--quick] [--root DIR ...]
 *
 * `--large-prompt` measures instead what one prompt near the 1 MiB body limit does to the
 * service's HTTP server: while such a gateway call is admitted and answered, `/health` is asked
 * again and again, one request at a time, and its slowest answer shows how long the event loop
 * was held; it also times the first call after a start. Each `--root` is a checkout of the
 * project (e.g. an older commit, with its node_modules) whose service is measured beside this
 * one's, in turns, in the same run.
 *
 * `run({ quick })` is what `npm run bench` calls; it returns the figures and a Markdown table.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'node:http';
import { hashApiKey } from '../src/modules/auth/api-key-file';

const ROOT = resolve(__dirname, '..');
const MODEL = 'gpt-4o-mini';
const BODY = { model: MODEL, messages: [{ role: 'user', content: 'Say something short.' }], max_tokens: 64 };
const CONCURRENCY = 50;

type Target = 'upstream' | 'asa-backend' | 'asa-backend, journal os' | 'asa-backend, journal off' | 'portkey';
type JournalMode = 'disk' | 'os' | 'off';
type Mode = 'plain' | 'streamed';

export interface Figures {
  target: Target;
  mode: Mode;
  clients: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  throughputRps: number;
}

export interface GatewayBenchResult {
  name: 'gateway';
  figures: Figures[];
  markdown: string;
}

interface Endpoint {
  url: string;
  headers: Record<string, string>;
}

export async function run(opts: { quick: boolean }): Promise<GatewayBenchResult> {
  const sequential = opts.quick ? 100 : 1000;
  const perClient = opts.quick ? 4 : 40; // concurrent: 50 clients x this many requests each
  const warmup = opts.quick ? 30 : 200;
  const dir = mkdtempSync(join(tmpdir(), 'asa-gateway-bench-'));
  const procs: ChildProcess[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY + 10 });
  try {
    const [asaPort, asaOsJournalPort, asaNoJournalPort, portkeyPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const { simBase, key } = await startUpstream(dir, procs);
    // The service as deployed by default (the usage journal makes each call's start durable before
    // it is sent), with USAGE_JOURNAL_SYNC=os (the start written, its fdatasync off the call's path)
    // and with USAGE_JOURNAL=off, to show what the journal costs on this disk.
    procs.push(
      startService(dir, simBase, asaPort, { journal: 'disk' }),
      startService(dir, simBase, asaOsJournalPort, { journal: 'os' }),
      startService(dir, simBase, asaNoJournalPort, { journal: 'off' }),
    );
    for (const port of [asaPort, asaOsJournalPort, asaNoJournalPort]) await waitForHttp(`http://127.0.0.1:${port}/health`, 120_000);

    // Portkey binds every interface itself (it has no host option); only loopback traffic is sent to it.
    procs.push(spawnNode([resolve(ROOT, 'node_modules/@portkey-ai/gateway/build/start-server.js'), `--port=${portkeyPort}`, '--headless'], { NODE_ENV: 'production' }));
    await waitForHttp(`http://127.0.0.1:${portkeyPort}/`);

    const endpoints: Record<Target, Endpoint> = {
      upstream: { url: `${simBase}/chat/completions`, headers: { authorization: 'Bearer sk-simulator' } },
      'asa-backend': { url: `http://127.0.0.1:${asaPort}/v1/chat/completions`, headers: { authorization: `Bearer ${key}` } },
      'asa-backend, journal os': { url: `http://127.0.0.1:${asaOsJournalPort}/v1/chat/completions`, headers: { authorization: `Bearer ${key}` } },
      'asa-backend, journal off': { url: `http://127.0.0.1:${asaNoJournalPort}/v1/chat/completions`, headers: { authorization: `Bearer ${key}` } },
      portkey: {
        url: `http://127.0.0.1:${portkeyPort}/v1/chat/completions`,
        headers: { authorization: 'Bearer sk-simulator', 'x-portkey-provider': 'openai', 'x-portkey-custom-host': simBase },
      },
    };
    const targets: Target[] = ['upstream', 'asa-backend', 'asa-backend, journal os', 'asa-backend, journal off', 'portkey'];
    // Ready means a chat completion comes back whole through each of them (Portkey answers 500 for a moment after it listens).
    for (const target of targets) await waitForChat(agent, endpoints[target]);
    const figures: Figures[] = [];
    for (const mode of ['plain', 'streamed'] as Mode[]) {
      for (const target of targets) await load(agent, endpoints[target], mode, 1, warmup); // warm up JITs and connection pools
      // Interleaved by round so a slow moment of the shared machine falls on every target alike.
      for (const clients of [1, CONCURRENCY]) {
        const perTarget = new Map<Target, { ms: number[]; wallMs: number }>();
        const rounds = 5;
        for (let round = 0; round < rounds; round++) {
          for (const target of targets) {
            const n = clients === 1 ? Math.ceil(sequential / rounds) : Math.ceil(perClient / rounds);
            const out = await load(agent, endpoints[target], mode, clients, n);
            const acc = perTarget.get(target) ?? { ms: [], wallMs: 0 };
            acc.ms.push(...out.ms);
            acc.wallMs += out.wallMs;
            perTarget.set(target, acc);
          }
        }
        for (const target of targets) {
          const { ms, wallMs } = perTarget.get(target)!;
          figures.push({ target, mode, clients, requests: ms.length, p50Ms: quantile(ms, 0.5), p99Ms: quantile(ms, 0.99), throughputRps: (ms.length / wallMs) * 1000 });
        }
      }
    }
    return { name: 'gateway', figures, markdown: table(figures) };
  } finally {
    agent.destroy();
    await Promise.all(procs.map(stop));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `clients` loops of `perClient` requests each; every response is read to its end. */
async function load(agent: Agent, ep: Endpoint, mode: Mode, clients: number, perClient: number): Promise<{ ms: number[]; wallMs: number }> {
  const body = JSON.stringify(mode === 'streamed' ? { ...BODY, stream: true } : BODY);
  const ms: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = 0; i < perClient; i++) {
        const start = performance.now();
        const { status, text } = await post(agent, ep, body);
        if (status !== 200 || (mode === 'streamed' && !text.includes('[DONE]'))) throw new Error(`${ep.url} answered ${status}: ${text.slice(0, 300)}`);
        ms.push(performance.now() - start);
      }
    }),
  );
  return { ms, wallMs: performance.now() - t0 };
}

/** One POST over a kept-alive connection, read to its end. */
function post(agent: Agent, ep: Endpoint, body: string): Promise<{ status: number; text: string }> {
  return new Promise((done, fail) => {
    const req = request(ep.url, { method: 'POST', agent, headers: { ...ep.headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => done({ status: res.statusCode ?? 0, text }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end(body);
  });
}

async function waitForChat(agent: Agent, ep: Endpoint, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await post(agent, ep, JSON.stringify(BODY)).catch((err: Error) => ({ status: 0, text: err.message }));
    if (res.status === 200) return;
    if (Date.now() > deadline) throw new Error(`${ep.url} is not ready after ${timeoutMs} ms: ${res.status} ${res.text.slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function quantile(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** One row per target: its latency, what it adds to the bare upstream's, and its throughput against the upstream's and Portkey's. */
function table(figures: Figures[]): string {
  const ms = (x: number) => x.toFixed(2);
  const lines = [
    '| call | clients | through | p50 (ms) | p99 (ms) | added p50 (ms) | added p99 (ms) | throughput (req/s) | throughput / upstream | p99 / Portkey p99 |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const mode of ['plain', 'streamed'] as Mode[]) {
    for (const clients of [1, CONCURRENCY]) {
      const row = (target: Target) => figures.find((f) => f.target === target && f.mode === mode && f.clients === clients)!;
      const up = row('upstream');
      const pk = row('portkey');
      for (const f of figures.filter((x) => x.mode === mode && x.clients === clients)) {
        const bare = f.target === 'upstream';
        lines.push(
          `| ${mode} | ${clients} | ${f.target} | ${ms(f.p50Ms)} | ${ms(f.p99Ms)} | ${bare ? '' : ms(f.p50Ms - up.p50Ms)} | ${bare ? '' : ms(f.p99Ms - up.p99Ms)} | ` +
            `${f.throughputRps.toFixed(0)} | ${(f.throughputRps / up.throughputRps).toFixed(2)} | ${bare ? '' : (f.p99Ms / pk.p99Ms).toFixed(2)} |`,
        );
      }
    }
  }
  return lines.join('\n');
}

export interface LargePromptFigures {
  root: string;
  firstCallMs: number;
  warmCallP50Ms: number;
  promptChars: number;
  largeCalls: number;
  largeCallP50Ms: number;
  healthProbes: number;
  healthP50Ms: number;
  healthMaxMs: number;
}

/** See `--large-prompt` at the top of this file. */
export async function runLargePrompt(opts: { quick: boolean; roots: string[] }): Promise<LargePromptFigures[]> {
  const rounds = opts.quick ? 2 : 5;
  const dir = mkdtempSync(join(tmpdir(), 'asa-gateway-large-'));
  const procs: ChildProcess[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  try {
    const { simBase, key } = await startUpstream(dir, procs);
    const services = await Promise.all(
      opts.roots.map(async (root) => {
        const port = await freePort();
        procs.push(startService(dir, simBase, port, { journal: 'disk', root }));
        return { root, base: `http://127.0.0.1:${port}` };
      }),
    );
    for (const s of services) await waitForHttp(`${s.base}/health`, 120_000);

    // Words from a fixed list in a seeded order: text a tokenizer has to work through, ~900 kB.
    const words = ['account', 'latency', 'budget', 'token', 'stream', 'quota', 'record', 'window', 'price', 'model', 'gateway', 'usage', 'refund', 'journal'];
    let seed = 7;
    const parts: string[] = [];
    for (let n = 0; n < 900_000; ) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const w = `${words[seed % words.length]}${seed % 97} `;
      parts.push(w);
      n += w.length;
    }
    const large = JSON.stringify({ model: MODEL, max_tokens: 16, messages: [{ role: 'user', content: parts.join('') }] });
    const endpoint = (base: string): Endpoint => ({ url: `${base}/v1/chat/completions`, headers: { authorization: `Bearer ${key}` } });
    const timed = async (ep: Endpoint, body: string) => {
      const start = performance.now();
      const res = await post(agent, ep, body);
      if (res.status !== 200) throw new Error(`${ep.url} answered ${res.status}: ${res.text.slice(0, 300)}`);
      return performance.now() - start;
    };

    const acc = services.map((s) => ({ ...s, first: 0, warm: [] as number[], large: [] as number[], health: [] as number[] }));
    for (const s of acc) {
      s.first = await timed(endpoint(s.base), JSON.stringify(BODY)); // the first call after the start
      for (let i = 0; i < 10; i++) s.warm.push(await timed(endpoint(s.base), JSON.stringify(BODY)));
    }
    for (let round = 0; round < rounds; round++) {
      for (const s of acc) {
        let done = false;
        const call = timed(endpoint(s.base), large).finally(() => (done = true));
        while (!done) {
          const start = performance.now();
          const res = await fetch(`${s.base}/health`);
          await res.arrayBuffer();
          s.health.push(performance.now() - start);
        }
        s.large.push(await call);
      }
    }
    return acc.map((s) => ({
      root: s.root,
      firstCallMs: s.first,
      warmCallP50Ms: quantile(s.warm, 0.5),
      promptChars: parts.join('').length,
      largeCalls: s.large.length,
      largeCallP50Ms: quantile(s.large, 0.5),
      healthProbes: s.health.length,
      healthP50Ms: quantile(s.health, 0.5),
      healthMaxMs: Math.max(...s.health),
    }));
  } finally {
    agent.destroy();
    await Promise.all(procs.map(stop));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The simulator upstream (its own process), and the key, gateway and quota files the services read from `dir`. */
async function startUpstream(dir: string, procs: ChildProcess[]): Promise<{ simBase: string; key: string }> {
  const simPort = await freePort();
  const simBase = `http://127.0.0.1:${simPort}/v1`;
  procs.push(spawnNode(['-r', 'ts-node/register/transpile-only', 'src/simulator/run-simulator.ts', '--port', String(simPort)], {}));
  await waitForHttp(`${simBase}/models`);
  const key = 'asa_bench_gateway_user_key';
  writeFileSync(join(dir, 'keys.json'), JSON.stringify({ keys: [{ name: 'bench', scope: 'user', user_id: 'bench-user', sha256: hashApiKey(key) }] }));
  writeFileSync(join(dir, 'gateway.json'), JSON.stringify({ routes: [{ model: '*', upstream: 'default' }] }));
  writeFileSync(join(dir, 'quotas.json'), JSON.stringify({ rules: [] }));
  return { simBase, key };
}

/** The service (`src/main.ts` of `root`, its own process) on a scratch SQLite file, its gateway routing every model to `simBase`. */
function startService(dir: string, simBase: string, port: number, opts: { journal: JournalMode; root?: string }): ChildProcess {
  return spawnNode(
    ['-r', 'ts-node/register/transpile-only', 'src/main.ts'],
    {
      PORT: String(port),
      HOST: '127.0.0.1',
      NODE_ENV: 'production',
      LOG_FORMAT: 'json',
      OPENAI_BASE_URL: simBase,
      OPENAI_API_KEY: 'sk-simulator',
      DATABASE_URL: `sqlite:${join(dir, `asa-${port}.db`)}`,
      API_KEYS_FILE: join(dir, 'keys.json'),
      GATEWAY_FILE: join(dir, 'gateway.json'),
      USAGE_JOURNAL: opts.journal === 'off' ? 'off' : 'on',
      USAGE_JOURNAL_SYNC: opts.journal === 'os' ? 'os' : 'disk',
      USAGE_JOURNAL_DIR: join(dir, `journal-${port}`),
      BILLING_EXPORT_DIR: join(dir, `exports-${port}`),
      QUOTAS_FILE: join(dir, 'quotas.json'),
    },
    opts.root,
  );
}

const outputs = new Map<ChildProcess, () => string>();

function spawnNode(args: string[], env: Record<string, string>, cwd = ROOT): ChildProcess {
  const child = spawn(process.execPath, args, {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? ROOT, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  const keep = (d: Buffer) => (err = (err + d.toString()).slice(-4000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  outputs.set(child, () => err);
  child.once('exit', (code, signal) => {
    if (code !== 0 && code !== null && signal === null) process.stderr.write(`bench process ${args.join(' ')} exited ${code}:\n${err}\n`);
  });
  return child;
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', () => {
      clearTimeout(timer);
      done();
    });
    child.kill('SIGTERM');
  });
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}

async function waitForHttp(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fetch(url);
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  const quick = argv.includes('--quick');
  const roots = [ROOT, ...argv.flatMap((a, i) => (a === '--root' && argv[i + 1] ? [resolve(argv[i + 1])] : []))];
  const main = argv.includes('--large-prompt')
    ? runLargePrompt({ quick, roots }).then((figures) => {
        for (const f of figures) console.log(JSON.stringify(f));
      })
    : run({ quick }).then((r) => {
        console.log(r.markdown);
        console.log('\nraw figures:');
        for (const f of r.figures) console.log(JSON.stringify(f));
      });
  main.catch((err: unknown) => {
    console.error(err);
    if (process.env.BENCH_DEBUG) for (const out of outputs.values()) console.error(out());
    process.exit(1);
  });
}
