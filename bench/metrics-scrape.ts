/**
 * What a Prometheus scrape of /metrics costs as models grow: the real app (AppModule on Fastify,
 * 127.0.0.1), usage records of 1, 100 and 500 models (successes, errors, streamed calls: every LLM
 * series a model can have) through the usage recorder, then GET /metrics over HTTP in the
 * OpenMetrics format Prometheus asks for: time per scrape (p50/p99) and body size.
 *
 *   npx ts-node --transpile-only bench/metrics-scrape.ts [--quick] [--out result.json]
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import type { UsageRecord } from '../src/plugins/sdk';
import { benchServiceEnv, round, rssMb, runSection } from './support/common';

const OPENMETRICS = 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

export interface ScrapeFigure {
  readonly models: number;
  readonly llmSeries: number;
  readonly bytes: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

function records(model: string): UsageRecord[] {
  const base = {
    createdAtMs: Date.now(),
    taskId: null,
    userId: 'bench-user',
    traceId: null,
    provider: 'openai',
    operation: 'chat' as const,
    requestedModel: model,
    responseModel: model,
    cachedInputTokens: 10,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
    unpriced: false,
    priceSource: 'bench',
    estimated: false,
  };
  const ok = (latencyMs: number, streamed: boolean): UsageRecord => ({
    ...base,
    id: randomUUID(),
    inputTokens: 100,
    outputTokens: 20,
    totalTokens: 120,
    costNanos: 12_345,
    latencyMs,
    timeToFirstTokenMs: streamed ? latencyMs / 3 : null,
    streamed,
    status: 'success',
    errorType: null,
  });
  return [
    ok(800, false),
    ok(2_500, true),
    { ...ok(30_000, false), id: randomUUID(), status: 'error', errorType: 'timeout', outputTokens: 0, totalTokens: 100, costNanos: 2_500 },
    { ...ok(100, false), id: randomUUID(), status: 'error', errorType: 'http_429', inputTokens: 0, outputTokens: 0, totalTokens: 0, costNanos: 0 },
  ];
}

async function main(quick: boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'asa-bench-metrics-'));
  Object.assign(process.env, benchServiceEnv(dir), { DATABASE_URL: `sqlite:${join(dir, 'bench.db')}`, LOG_FORMAT: 'pretty' });
  const { NestFactory } = await import('@nestjs/core');
  const { FastifyAdapter } = await import('@nestjs/platform-fastify');
  const { AppModule } = await import('../src/app.module');
  const { setupApp } = await import('../src/setup-app');
  const { UsageRecorder } = await import('../src/modules/usage/usage-recorder.service');
  const app = await NestFactory.create(AppModule, new FastifyAdapter(), { logger: ['error', 'warn'] });
  setupApp(app as never);
  await app.listen(0, '127.0.0.1');
  const base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  const recorder = app.get(UsageRecorder);
  const figures: ScrapeFigure[] = [];
  let added = 0;
  try {
    for (const models of [1, 100, 500]) {
      for (; added < models; added++) for (const r of records(`bench-model-${String(added).padStart(3, '0')}`)) await recorder.record(r);
      await recorder.flush();
      let body = '';
      const bench = new Bench({ iterations: quick ? 10 : 50, time: 0, warmup: true, warmupIterations: 3, warmupTime: 0 });
      bench.add(`${models} models`, async () => {
        const res = await fetch(`${base}/metrics`, { headers: { accept: OPENMETRICS } });
        body = await res.text();
        if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
      });
      await bench.run();
      const result = bench.tasks[0].result;
      if (result.state !== 'completed') throw new Error(`scrape at ${models} models: ${result.state}`);
      figures.push({
        models,
        llmSeries: body.split('\n').filter((l) => l.startsWith('llm_')).length,
        bytes: Buffer.byteLength(body),
        p50Ms: round(result.latency.p50),
        p99Ms: round(result.latency.p99),
      });
      console.error(JSON.stringify(figures[figures.length - 1]));
    }
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return { format: 'OpenMetrics', recordsPerModel: 4, figures, rssMbAfter: rssMb() };
}

if (require.main === module) runSection(main);
