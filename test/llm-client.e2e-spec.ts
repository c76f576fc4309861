import { HttpStatus } from '@nestjs/common';
import { SpanKind, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { APIConnectionError, APIConnectionTimeoutError, APIUserAbortError, InternalServerError, RateLimitError } from 'openai';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { DomainException } from '../src/common/domain.exception';
import { LlmClientFactory } from '../src/modules/llm/llm-client.factory';
import { LlmBudgetExceededException, LlmInvalidArgumentException } from '../src/modules/llm/llm.exceptions';
import { CATALOG_VERSION } from '../src/modules/llm/pricing/pricing.service';
import { LlmUsage } from '../src/modules/usage/entities/llm-usage.entity';
import { TokenEstimator } from '../src/modules/llm/token-estimator';
import { usageConfig } from '../src/config/usage.config';
import { decodeSegment, type JournalEntry } from '../src/modules/usage/journal/journal-entry';
import { waitFor } from './support/pipeline';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { LLM_ADMISSION_POLICIES, LlmAdmissionPolicy, LlmCallActual, LlmCallIntent } from '../src/plugins/sdk';
import { FakeOpenAi } from './fixtures/fake-openai';
import { createTestApp, TestApp } from './support/create-app';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';

class TestRefusal extends DomainException {
  readonly code = 'TEST_REFUSED';
  readonly status = HttpStatus.TOO_MANY_REQUESTS;
}

/** A real admission policy, installed through the LLM_ADMISSION_POLICIES extension point. */
class RecordingPolicy implements LlmAdmissionPolicy {
  readonly name = 'recording';
  events: ({ kind: 'admit'; intent: LlmCallIntent } | { kind: 'settle'; taskId: string | null; actual: number | null; tokens: number | undefined })[] = [];
  refuse: ((intent: LlmCallIntent) => boolean) | null = null;

  async admit(intent: LlmCallIntent) {
    this.events.push({ kind: 'admit', intent });
    if (this.refuse?.(intent)) throw new TestRefusal(`refused ${intent.model}`);
    return {
      settle: (actual: number | null, used?: LlmCallActual) => void this.events.push({ kind: 'settle', taskId: intent.taskId, actual, tokens: used?.totalTokens }),
    };
  }
}

const GPT4O_SOURCE = `genai-prices@${CATALOG_VERSION}:openai/gpt-4o`;
const USER_HI = [{ role: 'user' as const, content: 'hi' }];
// Local estimate of USER_HI's prompt (o200k_base): 3 reply priming + 3 per message + "user" (1) + "hi" (1) = 8 tokens.
const USER_HI_TOKENS = 8;

describe('LlmClient through the real openai SDK against the simulator', () => {
  let fake: FakeOpenAi;
  let t: TestApp;
  let llm: LlmClientFactory;
  let recorder: UsageRecorder;
  let dataSource: DataSource;
  let dir: string;
  let pricingFile: string;
  const policy = new RecordingPolicy();
  const spans = new InMemorySpanExporter();

  beforeAll(async () => {
    trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
    dir = mkdtempSync(join(tmpdir(), 'asa-llm-'));
    pricingFile = join(dir, 'pricing.json');
    writeFileSync(
      pricingFile,
      JSON.stringify({ models: [{ model: 'acme-llm', input: '0.0015', cached_input: '0.0005', output: '0.003', reasoning: '0.004' }] }),
    );
    fake = await FakeOpenAi.start();
    t = await createTestApp({
      env: { OPENAI_BASE_URL: fake.baseUrl, OPENAI_API_KEY: 'test-key', OPENAI_MAX_RETRIES: '0', LLM_PROVIDER: 'openai', PRICING_FILE: pricingFile },
      override: (b) => b.overrideProvider(LLM_ADMISSION_POLICIES).useValue([policy]),
    });
    llm = t.app.get(LlmClientFactory);
    recorder = t.app.get(UsageRecorder);
    dataSource = t.app.get(DataSource);
  });
  afterAll(async () => {
    await t?.close();
    await fake?.close();
    trace.disable();
    rmSync(dir, { recursive: true, force: true });
  });
  afterEach(() => {
    fake.expectAllRepliesUsed();
    policy.refuse = null;
  });

  async function rowsOf(taskId: string): Promise<LlmUsage[]> {
    await recorder.flush();
    return dataSource.getRepository(LlmUsage).find({ where: { taskId }, order: { createdAtMs: 'ASC' } });
  }

  async function oneRow(taskId: string): Promise<LlmUsage> {
    const rows = await rowsOf(taskId);
    expect(rows).toHaveLength(1);
    return rows[0];
  }

  function spanOf(recordId: string) {
    const found = spans.getFinishedSpans().filter((s) => s.attributes['asa.usage_record_id'] === recordId);
    expect(found).toHaveLength(1);
    return found[0];
  }

  it('plain chat: cached tokens, response model, exact cost, span attributes', async () => {
    fake.enqueue({ content: 'Hello!', model: 'gpt-4o-2024-08-06', usage: { prompt_tokens: 2000, completion_tokens: 100, cached_tokens: 1536 } });
    const before = Date.now();
    const client = llm.forTask('t-plain', { userId: 'u-1' });
    const res = await client.chat({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Say hello' }], max_tokens: 64, temperature: 0.2 });
    const after = Date.now();
    expect(res.choices[0].message.content).toBe('Hello!');
    expect(fake.lastRequest().body).toMatchObject({ model: 'gpt-4o', max_tokens: 64, temperature: 0.2 });
    expect(fake.lastRequest().body.stream).toBe(false);

    const row = await oneRow('t-plain');
    // gpt-4o: input 2.5, cached 1.25, output 10 (USD per 10^6 tokens)
    // (2000 − 1536) × 2.5 = 1160; 1536 × 1.25 = 1920; 100 × 10 = 1000 -> 4080 USD/M = 0.00408 USD = 4,080,000 nanos
    expect(row).toMatchObject({
      taskId: 't-plain',
      userId: 'u-1',
      provider: 'openai',
      operation: 'chat',
      requestedModel: 'gpt-4o',
      responseModel: 'gpt-4o-2024-08-06',
      inputTokens: 2000,
      cachedInputTokens: 1536,
      cacheWriteTokens: 0,
      outputTokens: 100,
      reasoningTokens: 0,
      totalTokens: 2100,
      costNanos: 4_080_000,
      unpriced: false,
      priceSource: GPT4O_SOURCE,
      timeToFirstTokenMs: null,
      streamed: false,
      status: 'success',
      errorType: null,
      estimated: false,
    });
    expect(row.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(row.createdAtMs).toBeGreaterThanOrEqual(before);
    expect(row.createdAtMs).toBeLessThanOrEqual(after);
    expect(row.latencyMs).toBeGreaterThan(0);
    expect(row.latencyMs).toBeLessThanOrEqual(after - before + 1);

    const span = spanOf(row.id);
    expect(span.name).toBe('chat gpt-4o');
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(row.traceId).toBe(span.spanContext().traceId);
    expect(span.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o',
      'gen_ai.request.max_tokens': 64,
      'gen_ai.request.temperature': 0.2,
      'gen_ai.response.model': 'gpt-4o-2024-08-06',
      'gen_ai.response.id': res.id,
      'gen_ai.response.finish_reasons': ['stop'],
      'gen_ai.usage.input_tokens': 2000,
      'gen_ai.usage.output_tokens': 100,
      'gen_ai.usage.cache_read.input_tokens': 1536,
      'gen_ai.usage.reasoning.output_tokens': 0,
      'server.address': '127.0.0.1',
      'asa.cost_nanos': 4_080_000,
      'asa.cost_usd': 0.00408,
      'asa.unpriced': false,
      'asa.task_id': 't-plain',
      'asa.user_id': 'u-1',
      'asa.usage.estimated': false,
    });
    expect(span.attributes['error.type']).toBeUndefined();
  });

  it('streaming chat: asks for usage, counts reasoning and cache writes, measures time to first token', async () => {
    fake.enqueue({
      content: 'The sea is calm tonight',
      chunkDelayMs: 5,
      usage: { prompt_tokens: 1000, completion_tokens: 800, cached_tokens: 200, cache_write_tokens: 100, reasoning_tokens: 600 },
    });
    const client = llm.forTask('t-stream', { userId: 'u-2' });
    let text = '';
    for await (const chunk of client.chatStream({ model: 'o3-mini', messages: USER_HI })) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toBe('The sea is calm tonight');
    expect(fake.lastRequest().body).toMatchObject({ stream: true, stream_options: { include_usage: true } });

    const row = await oneRow('t-stream');
    // o3-mini: input 1.1, cached 0.55, no cache-write rate (-> input 1.1), output 4.4, no reasoning rate (-> output 4.4)
    // uncached (1000 − 200 − 100) × 1.1 = 770; 200 × 0.55 = 110; 100 × 1.1 = 110;
    // visible (800 − 600) × 4.4 = 880; reasoning 600 × 4.4 = 2640 -> 4510 USD/M = 4,510,000 nanos
    expect(row).toMatchObject({
      requestedModel: 'o3-mini',
      responseModel: 'o3-mini',
      inputTokens: 1000,
      cachedInputTokens: 200,
      cacheWriteTokens: 100,
      outputTokens: 800,
      reasoningTokens: 600,
      totalTokens: 1800,
      costNanos: 4_510_000,
      unpriced: false,
      priceSource: `genai-prices@${CATALOG_VERSION}:openai/o3-mini`,
      streamed: true,
      status: 'success',
      errorType: null,
      estimated: false,
    });
    expect(row.timeToFirstTokenMs).toBeGreaterThan(0);
    expect(row.timeToFirstTokenMs!).toBeLessThanOrEqual(row.latencyMs);
    const span = spanOf(row.id);
    expect(span.attributes).toMatchObject({
      'gen_ai.request.stream': true,
      'gen_ai.usage.reasoning.output_tokens': 600,
      'gen_ai.usage.cache_creation.input_tokens': 100,
      'gen_ai.response.time_to_first_chunk': row.timeToFirstTokenMs! / 1000,
    });
  });

  it('streaming without usage from the server: tiktoken counts, estimated', async () => {
    fake.enqueue({ content: 'Hello there friend', usage: null });
    const client = llm.forTask('t-stream-nousage');
    const messages = [
      { role: 'system' as const, content: 'You are terse.' },
      { role: 'user' as const, content: 'Write a haiku about the sea' },
    ];
    for await (const _ of client.chatStream({ model: 'gpt-4o', messages })) void _;
    const row = await oneRow('t-stream-nousage');
    // prompt (o200k_base): 3 priming + [3 + "system" 1 + "You are terse." 4] + [3 + "user" 1 + "Write a haiku about the sea" 7] = 22
    // completion: "Hello there friend" = 3 tokens. gpt-4o: 22 × 2.5 + 3 × 10 = 55 + 30 = 85 USD/M = 85,000 nanos
    expect(row).toMatchObject({ inputTokens: 22, outputTokens: 3, totalTokens: 25, cachedInputTokens: 0, reasoningTokens: 0, costNanos: 85_000, estimated: true, status: 'success', streamed: true });
    expect(spanOf(row.id).attributes['asa.usage.estimated']).toBe(true);
  });

  it('plain chat without usage from the server is estimated too', async () => {
    fake.enqueue({ content: 'Hello there friend', usage: null });
    await llm.forTask('t-plain-nousage').chat({ model: 'gpt-4o-mini', messages: USER_HI });
    // gpt-4o-mini: input 0.15, output 0.6. 8 × 0.15 + 3 × 0.6 = 1.2 + 1.8 = 3 USD/M = 3,000 nanos
    expect(await oneRow('t-plain-nousage')).toMatchObject({ inputTokens: USER_HI_TOKENS, outputTokens: 3, costNanos: 3_000, estimated: true, status: 'success' });
  });

  it.each([
    ['absurd counts', { prompt_tokens: 1e20, completion_tokens: 12345678901234567890 }],
    ['a negative count', { prompt_tokens: -100, completion_tokens: 3 }],
    ['a fractional count', { prompt_tokens: 8.5, completion_tokens: 3 }],
    ['a count as a string', { prompt_tokens: '8', completion_tokens: 3 }],
    ['more cached than prompt tokens', { prompt_tokens: 8, completion_tokens: 3, cached_tokens: 9 }],
  ])('usage with %s is not trusted: the call is recorded with its local estimate, estimated', async (_what, usage) => {
    const task = `t-untrusted-${Math.random().toString(36).slice(2, 8)}`;
    fake.enqueue({ content: 'Hello there friend', usage: usage as never });
    await llm.forTask(task).chat({ model: 'gpt-4o-mini', messages: USER_HI });
    // As without usage: 8 × 0.15 + 3 × 0.6 = 3 USD/M = 3,000 nanos.
    expect(await oneRow(task)).toMatchObject({ inputTokens: USER_HI_TOKENS, outputTokens: 3, cachedInputTokens: 0, costNanos: 3_000, estimated: true, status: 'success' });
  });

  it('embeddings', async () => {
    fake.enqueue({ usage: { prompt_tokens: 1234, completion_tokens: 0 } });
    const res = await llm.forTask('t-embed', { userId: 'u-3' }).embed({ model: 'text-embedding-3-small', input: ['alpha', 'beta'] });
    expect(res.data).toHaveLength(2);
    expect(res.data[0].embedding).toHaveLength(8);
    const row = await oneRow('t-embed');
    // text-embedding-3-small: input 0.02. 1234 × 0.02 = 24.68 USD/M = 24,680 nanos
    expect(row).toMatchObject({
      operation: 'embeddings',
      requestedModel: 'text-embedding-3-small',
      responseModel: 'text-embedding-3-small',
      inputTokens: 1234,
      outputTokens: 0,
      totalTokens: 1234,
      costNanos: 24_680,
      priceSource: `genai-prices@${CATALOG_VERSION}:openai/text-embedding-3-small`,
      streamed: false,
      timeToFirstTokenMs: null,
      status: 'success',
      estimated: false,
    });
    expect(spanOf(row.id).name).toBe('embeddings text-embedding-3-small');
  });

  it('HTTP 429 and 500: the SDK error reaches the caller, one error record each', async () => {
    fake.enqueue({ error: { status: 429, message: 'slow down' } }, { error: { status: 500 } });
    const client = llm.forTask('t-http');
    await expect(client.chat({ model: 'gpt-4o', messages: USER_HI })).rejects.toBeInstanceOf(RateLimitError);
    await expect(client.chat({ model: 'gpt-4o', messages: USER_HI })).rejects.toBeInstanceOf(InternalServerError);
    const rows = await rowsOf('t-http');
    expect(rows.map((r) => r.errorType).sort()).toEqual(['http_429', 'http_500']);
    for (const row of rows) {
      // no tokens were billed: a priced model costs exactly 0 (not null)
      expect(row).toMatchObject({ status: 'error', responseModel: null, inputTokens: 0, outputTokens: 0, totalTokens: 0, costNanos: 0, unpriced: false, priceSource: GPT4O_SOURCE, estimated: false });
      const span = spanOf(row.id);
      expect(span.attributes['error.type']).toBe(row.errorType);
      expect(span.status.code).toBe(2); // SpanStatusCode.ERROR
    }
  });

  it('timeout', async () => {
    fake.enqueue({ delayMs: 3_000 });
    await expect(llm.forTask('t-timeout').chat({ model: 'gpt-4o', messages: USER_HI }, { timeoutMs: 200 })).rejects.toBeInstanceOf(APIConnectionTimeoutError);
    const row = await oneRow('t-timeout');
    // The request reached the provider, which bills the prompt: charged as estimated (8 × 2.5 USD/M).
    expect(row).toMatchObject({ status: 'error', errorType: 'timeout', inputTokens: USER_HI_TOKENS, outputTokens: 0, costNanos: 20_000, estimated: true });
    expect(row.latencyMs).toBeGreaterThanOrEqual(190);
  });

  it('abort before the answer', async () => {
    fake.enqueue({ delayMs: 3_000 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    await expect(llm.forTask('t-abort').chat({ model: 'gpt-4o', messages: USER_HI }, { signal: ac.signal })).rejects.toBeInstanceOf(APIUserAbortError);
    // Stopped after the request was sent (a cancel, a SIGTERM): the prompt is charged, as after a crash.
    expect(await oneRow('t-abort')).toMatchObject({ status: 'error', errorType: 'aborted', inputTokens: USER_HI_TOKENS, costNanos: 20_000, estimated: true });
  });

  it('a call in flight gets its exact prompt count journaled after 100 ms (what a crash would charge), beside the upper bound admission used', async () => {
    const params = { model: 'gpt-4o', messages: [{ role: 'user' as const, content: 'Fix handler12: it counts items equal to the limit. '.repeat(40) }] };
    const estimator = new TokenEstimator();
    const exact = estimator.countChatPrompt(params);
    const bound = estimator.chatPromptBound(params);
    expect(bound).toBeGreaterThan(exact);
    fake.enqueue({ delayMs: 10_000 });
    const ac = new AbortController();
    const call = llm.forTask('t-journal-count').chat(params, { signal: ac.signal }).catch((e: unknown) => e);
    const dir = t.app.get<{ journal: { dir: string } }>(usageConfig.KEY).journal.dir;
    const entries = (): JournalEntry[] =>
      readdirSync(dir)
        .filter((f) => f.startsWith('segment-'))
        .flatMap((f) => decodeSegment(readFileSync(join(dir, f), 'utf8')).entries);
    let start: Extract<JournalEntry, { t: 'start' }> | undefined;
    await waitFor('the call’s count entry in the journal', () => {
      start = entries().find((e): e is Extract<JournalEntry, { t: 'start' }> => e.t === 'start' && e.call.taskId === 't-journal-count');
      return start !== undefined && entries().some((e) => e.t === 'count' && e.id === start!.call.id);
    });
    expect(start!.call.promptTokens).toBe(bound);
    expect(entries().filter((e) => e.t === 'count' && e.id === start!.call.id)).toEqual([{ t: 'count', id: start!.call.id, promptTokens: exact }]);
    ac.abort();
    expect(await call).toBeInstanceOf(APIUserAbortError);
    expect(await oneRow('t-journal-count')).toMatchObject({ errorType: 'aborted', inputTokens: exact, estimated: true });
    await estimator.onModuleDestroy();
  });

  it('abort before the request was sent: recorded, charged nothing', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(llm.forTask('t-abort-early').chat({ model: 'gpt-4o', messages: USER_HI }, { signal: ac.signal })).rejects.toBeInstanceOf(APIUserAbortError);
    expect(await oneRow('t-abort-early')).toMatchObject({ status: 'error', errorType: 'aborted', inputTokens: 0, costNanos: 0, estimated: false });
  });

  it('abort in the middle of a stream: the consumer sees the abort, the partial output is estimated', async () => {
    fake.enqueue({ content: 'one two three four five', chunkDelayMs: 100 });
    const ac = new AbortController();
    let text = '';
    const err = await (async () => {
      for await (const c of llm.forTask('t-abort-stream').chatStream({ model: 'gpt-4o', messages: USER_HI }, { signal: ac.signal })) {
        const piece = c.choices[0]?.delta?.content ?? '';
        text += piece;
        if (piece) ac.abort();
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIUserAbortError);
    expect(text).toBe('one');
    const row = await oneRow('t-abort-stream');
    // 8 × 2.5 + 1 ("one") × 10 = 30 USD/M = 30,000 nanos
    expect(row).toMatchObject({ status: 'error', errorType: 'aborted', streamed: true, inputTokens: USER_HI_TOKENS, outputTokens: 1, costNanos: 30_000, estimated: true });
  });

  it('a consumer that stops iterating early still gives exactly one record', async () => {
    fake.enqueue({ content: 'one two three four five', chunkDelayMs: 20 });
    let text = '';
    for await (const c of llm.forTask('t-abandon').chatStream({ model: 'gpt-4o', messages: USER_HI })) {
      text += c.choices[0]?.delta?.content ?? '';
      if (text) break;
    }
    expect(text).toBe('one');
    const row = await oneRow('t-abandon');
    // 8 × 2.5 + 1 × 10 = 30 USD/M = 30,000 nanos
    expect(row).toMatchObject({ status: 'error', errorType: 'abandoned', streamed: true, inputTokens: USER_HI_TOKENS, outputTokens: 1, costNanos: 30_000, estimated: true });
    expect(row.timeToFirstTokenMs).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 200));
    expect(await rowsOf('t-abandon')).toHaveLength(1);
  });

  it('a stream broken midway', async () => {
    fake.enqueue({ content: 'one two three four five', breakStreamAfterChunks: 2 });
    let text = '';
    const err = await (async () => {
      for await (const c of llm.forTask('t-broken').chatStream({ model: 'gpt-4o', messages: USER_HI })) text += c.choices[0]?.delta?.content ?? '';
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(text).toBe('one two');
    const row = await oneRow('t-broken');
    // 8 × 2.5 + 2 × 10 = 40 USD/M = 40,000 nanos
    expect(row).toMatchObject({ status: 'error', errorType: 'stream_interrupted', streamed: true, inputTokens: USER_HI_TOKENS, outputTokens: 2, costNanos: 40_000, estimated: true });
  });

  it('task budget: refuses a call whose worst case would pass it, without calling the provider', async () => {
    const a = llm.forTask('t-budget', { maxCostUsd: 0.01 }); // 10,000,000 nanos
    // worst case of each call: the prompt's bound, 12 (3 + 3 + "user" 4 bytes + "hi" 2 bytes) × 2.5, + max_tokens × 10 (USD/M)
    fake.enqueue({ usage: { prompt_tokens: 2000, completion_tokens: 100 } }); // actual: 2000 × 2.5 + 100 × 10 = 6000 -> 6,000,000
    await a.chat({ model: 'gpt-4o', messages: USER_HI, max_tokens: 100 }); // worst 1,030,000: 0 + 1,030,000 <= 10,000,000
    const requestsBefore = fake.requests.length;
    // worst 30 + 4000 = 4030 -> 4,030,000: 6,000,000 + 4,030,000 = 10,030,000 > 10,000,000
    const refused = await a.chat({ model: 'gpt-4o', messages: USER_HI, max_tokens: 400 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(LlmBudgetExceededException);
    expect(refused).toMatchObject({ code: 'LLM_BUDGET_EXCEEDED', status: 402 });
    expect((refused as Error).message).toMatch(/budget of 0\.010000000 USD.*spent 0\.006000000 USD.*up to 0\.004030000 USD/);
    expect(fake.requests.length).toBe(requestsBefore);
    // exactly at the budget is allowed: worst 30 + 3970 = 4000 -> 6,000,000 + 4,000,000 = 10,000,000
    fake.enqueue({ usage: { prompt_tokens: 8, completion_tokens: 10 } }); // actual 8 × 2.5 + 10 × 10 = 120 -> 120,000
    await a.chat({ model: 'gpt-4o', messages: USER_HI, max_tokens: 397 });

    // a new scope reads what the task spent from the database: 6,120,000
    const b = llm.forTask('t-budget', { maxCostUsd: 0.01 });
    // worst 30 + 3880 = 3910 -> 3,910,000: 6,120,000 + 3,910,000 = 10,030,000 > 10,000,000
    await expect(b.chat({ model: 'gpt-4o', messages: USER_HI, max_tokens: 388 })).rejects.toBeInstanceOf(LlmBudgetExceededException);
    // streams are refused on first iteration, before any request
    const stream = b.chatStream({ model: 'gpt-4o', messages: USER_HI, max_tokens: 388 });
    await expect((async () => { for await (const _ of stream) void _; })()).rejects.toBeInstanceOf(LlmBudgetExceededException);
    expect(fake.requests.length).toBe(requestsBefore + 1);

    const rows = await rowsOf('t-budget');
    expect(rows.map((r) => r.costNanos)).toEqual([6_000_000, 120_000]);
    expect(await b.checkUsageLimits({ maxCostPerTask: 0.01 })).toEqual({ within_limits: true, current_cost_usd: 0.00612, limit_usd: 0.01, remaining_usd: 0.00388 });
    expect(await b.checkUsageLimits({ maxCostPerTask: 0.005 })).toEqual({ within_limits: false, current_cost_usd: 0.00612, limit_usd: 0.005, remaining_usd: 0 });
    expect(await llm.forTask('t-never-used').checkUsageLimits({ maxCostPerTask: 5 })).toEqual({ within_limits: true, current_cost_usd: 0, limit_usd: 5, remaining_usd: 5 });
  });

  it('admission policies see each intent with its worst case, and a settlement with the real cost (also on failure)', async () => {
    policy.events = [];
    const client = llm.forTask('t-policy', { userId: 'u-p' });
    fake.enqueue({ usage: { prompt_tokens: 8, completion_tokens: 5 } }, { error: { status: 500 } }, { usage: { prompt_tokens: 3, completion_tokens: 0 } });
    await client.chat({ model: 'gpt-4o', messages: USER_HI, max_tokens: 50 });
    await expect(client.chat({ model: 'gpt-4o', messages: USER_HI, max_tokens: 50 })).rejects.toBeInstanceOf(InternalServerError);
    await client.embed({ model: 'text-embedding-3-small', input: 'alpha' });
    policy.refuse = (i) => i.model === 'gpt-4';
    const before = fake.requests.length;
    await expect(client.chat({ model: 'gpt-4', messages: USER_HI })).rejects.toBeInstanceOf(TestRefusal);
    expect(fake.requests.length).toBe(before);

    const intent = { taskId: 't-policy', userId: 'u-p', provider: 'openai', operation: 'chat', model: 'gpt-4o' };
    expect(policy.events).toEqual([
      // worst case from the prompt's bound (12 bytes, see the budget test): 12 × 2.5 + 50 × 10 = 530 USD/M = 530,000 nanos; 12 + 50 tokens
      { kind: 'admit', intent: { ...intent, maxCostNanos: 530_000, maxTokens: 62 } },
      // actual: 8 × 2.5 + 5 × 10 = 70 USD/M = 70,000 nanos
      { kind: 'settle', taskId: 't-policy', actual: 70_000, tokens: 13 },
      { kind: 'admit', intent: { ...intent, maxCostNanos: 530_000, maxTokens: 62 } },
      { kind: 'settle', taskId: 't-policy', actual: 0, tokens: 0 },
      // "alpha" is bounded by its 5 bytes: 5 × 0.02 = 0.1 USD/M = 100 nanos; actual 3 × 0.02 = 60 nanos
      { kind: 'admit', intent: { ...intent, operation: 'embeddings', model: 'text-embedding-3-small', maxCostNanos: 100, maxTokens: 5 } },
      { kind: 'settle', taskId: 't-policy', actual: 60, tokens: 3 },
      // no max_tokens: 4,096 output tokens assumed. gpt-4: 12 × 30 + 4096 × 60 = 360 + 245,760 = 246,120 USD/M
      { kind: 'admit', intent: { ...intent, model: 'gpt-4', maxCostNanos: 246_120_000, maxTokens: 4108 } },
    ]);
    // the refused call made no record
    expect((await rowsOf('t-policy')).map((r) => [r.requestedModel, r.status, r.costNanos])).toEqual([
      ['gpt-4o', 'success', 70_000],
      ['gpt-4o', 'error', 0],
      ['text-embedding-3-small', 'success', 60],
    ]);
  });

  it('an unpriced model: cost null, unpriced true, never 0', async () => {
    fake.enqueue({ usage: { prompt_tokens: 10, completion_tokens: 5 } });
    policy.events = [];
    await llm.forTask('t-unpriced').chat({ model: 'my-local-model', messages: USER_HI });
    expect(policy.events[0]).toMatchObject({ kind: 'admit', intent: { model: 'my-local-model', maxCostNanos: null } });
    expect(policy.events[1]).toEqual({ kind: 'settle', taskId: 't-unpriced', actual: null, tokens: 15 });
    const row = await oneRow('t-unpriced');
    expect(row).toMatchObject({ inputTokens: 10, outputTokens: 5, totalTokens: 15, costNanos: null, unpriced: true, priceSource: null, status: 'success' });
    const span = spanOf(row.id);
    expect(span.attributes['asa.unpriced']).toBe(true);
    expect(span.attributes['asa.cost_usd']).toBeUndefined();
  });

  it('a custom model priced from the overrides file', async () => {
    fake.enqueue({ usage: { prompt_tokens: 1001, completion_tokens: 701, cached_tokens: 300, reasoning_tokens: 101 } });
    await llm.forUser('u-acme').chat({ model: 'acme-llm', messages: USER_HI });
    await recorder.flush();
    const rows = await dataSource.getRepository(LlmUsage).find({ where: { userId: 'u-acme' } });
    expect(rows).toHaveLength(1);
    // (1001 − 300) × 0.0015 = 1.0515; 300 × 0.0005 = 0.15; (701 − 101) × 0.003 = 1.8; 101 × 0.004 = 0.404
    // sum 3.4055 USD/M = 3405.5 nanos -> half-up 3406
    expect(rows[0]).toMatchObject({ taskId: null, userId: 'u-acme', costNanos: 3406, unpriced: false, priceSource: `override:${pricingFile}#acme-llm` });
  });

  it('a failing usage pipeline never costs the caller the provider’s answer', async () => {
    fake.enqueue({ content: 'still here', usage: { prompt_tokens: 1, completion_tokens: 1 } });
    const spy = vi.spyOn(recorder, 'record').mockRejectedValueOnce(new Error('queue exploded'));
    try {
      const res = await llm.forTask('t-pipeline').chat({ model: 'gpt-4o', messages: USER_HI });
      expect(res.choices[0].message.content).toBe('still here');
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
  });

  it('refuses a model name longer than the usage columns take (128 characters) before admission or the provider; 128 is taken whole', async () => {
    const before = fake.requests.length;
    const long = 'm'.repeat(129);
    for (const call of [
      () => llm.forTask('t-long-model').chat({ model: long, messages: USER_HI }),
      () => llm.forTask('t-long-model').embed({ model: long, input: 'hi' }),
      () => llm.forTask('t-long-model').track({ operation: 'chat', model: long, prompt: { kind: 'chat', model: long, messages: [] }, maxOutputTokens: 1, streamed: false, params: {} }),
    ]) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LlmInvalidArgumentException);
      expect((err as Error).message).toMatch(/^model must be at most 128 characters \(got 129\)/);
    }
    expect(fake.requests.length).toBe(before);
    expect(policy.events.some((e) => e.kind === 'admit' && e.intent.model === long)).toBe(false);
    expect(await rowsOf('t-long-model')).toHaveLength(0);

    fake.enqueue({ content: 'ok' });
    await llm.forTask('t-max-model').chat({ model: 'm'.repeat(128), messages: USER_HI });
    expect((await oneRow('t-max-model')).requestedModel).toBe('m'.repeat(128));
  });

  it('refuses a negative budget with a clear error', () => {
    expect(() => llm.forTask('t-bad', { maxCostUsd: -1 })).toThrow(/maxCostUsd must be a non-negative number of USD, got -1/);
  });
});

describe('price overrides file at boot', () => {
  const dir = mkdtempSync(join(tmpdir(), 'asa-llm-bad-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a wrong entry stops the boot with a message naming the file, the entry and the field', async () => {
    const file = join(dir, 'pricing.json');
    writeFileSync(file, JSON.stringify({ models: [{ model: 'ok', input: 1, output: 1 }, { model: 'gpt-x', input: 'free', output: 1 }] }));
    await expect(createTestApp({ env: { PRICING_FILE: file, DATABASE_URL: 'sqlite::memory:' } })).rejects.toThrow(
      `Invalid price overrides file ${file}: models[1] ("gpt-x"): "input" must be a non-negative decimal`,
    );
  });
});

describe('LlmClient against an unreachable provider', () => {
  let t: TestApp;
  beforeAll(async () => {
    // A port that was just free: nothing listens there.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((r) => probe.close(() => r()));
    t = await createTestApp({ env: { OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1`, OPENAI_API_KEY: 'test-key', OPENAI_MAX_RETRIES: '0' } });
  });
  afterAll(() => t?.close());

  it('a connection error gives one record with errorType connection', async () => {
    const llm = t.app.get(LlmClientFactory);
    await expect(llm.forTask('t-conn').chat({ model: 'gpt-4o', messages: USER_HI })).rejects.toBeInstanceOf(APIConnectionError);
    await t.app.get(UsageRecorder).flush();
    const rows = await t.app.get(DataSource).getRepository(LlmUsage).find({ where: { taskId: 't-conn' } });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'error', errorType: 'connection', inputTokens: 0, costNanos: 0, traceId: null });
  });
});

describePostgres('LlmClient task spend and budgets', () => {
  let fake: FakeOpenAi;
  let db: ScratchDatabase;
  let t: TestApp;
  beforeAll(async () => {
    fake = await FakeOpenAi.start();
    db = await createScratchPostgres();
    t = await createTestApp({ env: { DATABASE_URL: db.url, OPENAI_BASE_URL: fake.baseUrl, OPENAI_API_KEY: 'test-key', OPENAI_MAX_RETRIES: '0' } });
  });
  afterAll(async () => {
    await t?.close();
    await db?.drop();
    await fake?.close();
  });

  it('sums the task’s cost exactly in PostgreSQL and a new budget scope starts from it', async () => {
    const llm = t.app.get(LlmClientFactory);
    const a = llm.forTask('pg-task', { maxCostUsd: 0.01 });
    // gpt-4o-mini: 1234 × 0.15 + 567 × 0.6 = 525.3 USD/M = 525,300 nanos, three times = 1,575,900
    fake.setDefault({ usage: { prompt_tokens: 1234, completion_tokens: 567 } });
    for (let i = 0; i < 3; i++) await a.chat({ model: 'gpt-4o-mini', messages: USER_HI, max_tokens: 10 });
    expect(await a.checkUsageLimits({ maxCostPerTask: 0.0015759 })).toEqual({ within_limits: true, current_cost_usd: 0.0015759, limit_usd: 0.0015759, remaining_usd: 0 });
    expect(await a.checkUsageLimits({ maxCostPerTask: 0.0015758 })).toMatchObject({ within_limits: false, remaining_usd: 0 });
    // a new scope with a 0.002 USD budget: 1,575,900 spent; worst 12 (the prompt's bound) × 0.15 + 3000 × 0.6 = 1801.8 -> 1,801,800 -> refused
    const b = llm.forTask('pg-task', { maxCostUsd: 0.002 });
    await expect(b.chat({ model: 'gpt-4o-mini', messages: USER_HI, max_tokens: 3000 })).rejects.toBeInstanceOf(LlmBudgetExceededException);
    // worst 12 × 0.15 + 700 × 0.6 = 421.8 -> 421,800: 1,575,900 + 421,800 = 1,997,700 <= 2,000,000 -> allowed
    await b.chat({ model: 'gpt-4o-mini', messages: USER_HI, max_tokens: 700 });
    await t.app.get(UsageRecorder).flush();
    const rows = await t.app.get(DataSource).getRepository(LlmUsage).find({ where: { taskId: 'pg-task' } });
    expect(rows.map((r) => r.costNanos)).toEqual([525_300, 525_300, 525_300, 525_300]);
  });
});
