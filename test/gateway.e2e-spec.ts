import OpenAI, { APIError } from 'openai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, Server } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { nanosToUsdExact } from '../src/common/money';
import { MIGRATIONS } from '../src/database/migration-list';
import { CreateGatewayTasks1764800000000 } from '../src/database/migrations/1764800000000-CreateGatewayTasks';
import { PricingService } from '../src/modules/llm/pricing/pricing.service';
import { TokenCounter } from '../src/modules/llm/token-count';
import { TokenEstimator } from '../src/modules/llm/token-estimator';
import { LlmUsage } from '../src/modules/usage/entities/llm-usage.entity';
import { UsageJournal } from '../src/modules/usage/journal/usage-journal.service';
import { UsageRecorder } from '../src/modules/usage/usage-recorder.service';
import { FakeOpenAi } from './fixtures/fake-openai';
import { bearer, writeApiKeysFile } from './support/api-keys';
import { createTestApp, listenOnLoopback, TestApp } from './support/create-app';
import { createScratchPostgres, describePostgres, ScratchDatabase } from './support/postgres';

const ADMIN_KEY = 'asa_admin_gateway_test_key';
const ALICE_KEY = 'asa_alice_gateway_test_key';
const BOB_KEY = 'asa_bob_gateway_test_key';
const PROVIDER_KEY = 'sk-provider-secret-never-sent-by-clients';
const MODEL = 'gpt-4o-mini';
const MIB = 1_048_576;
const CHAT = { model: MODEL, messages: [{ role: 'user' as const, content: 'Say three words' }] };

/** A loopback port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * An upstream whose chat streams drip one chunk every 50 ms for 10 s, and which notes whether
 * the gateway closed a stream before its end (what a client leaving must cause).
 */
async function startDrippingUpstream(): Promise<{ baseUrl: string; closedEarly: () => number; close: () => Promise<void> }> {
  let closedEarly = 0;
  const server: Server = createHttpServer(async (req, res) => {
    let text = '';
    for await (const part of req) text += String(part);
    // A body field the gateway passes on as it does any unknown field: cut the connection after this many events.
    const cutAfter = (JSON.parse(text || '{}') as { test_cut_after?: number }).test_cut_after;
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    let n = 0;
    const timer = setInterval(() => {
      const chunk = { id: 'drip', object: 'chat.completion.chunk', created: 0, model: 'drip-model', choices: [{ index: 0, delta: { content: `w${n} ` }, finish_reason: null }] };
      res.write(`data: ${JSON.stringify(chunk)}\n\n`);
      if (++n === cutAfter) {
        clearInterval(timer);
        res.destroy();
      } else if (n === 200) {
        clearInterval(timer);
        res.end('data: [DONE]\n\n');
      }
    }, 50);
    res.on('close', () => {
      clearInterval(timer);
      if (!res.writableFinished) closedEarly++;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    closedEarly: () => closedEarly,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/**
 * An upstream that misbehaves as its request's `test_behaviour` says: `stall` (two chunks, then
 * silence with the connection open), `done-then-hold` ([DONE], connection left open), `error-mid`
 * (a chunk, then an error event), `html` (200 with an HTML page), `empty` (200 with no body),
 * `plain-stall` (200, half a JSON body, then silence).
 */
async function startOddUpstream(): Promise<{ baseUrl: string; close: () => Promise<void> }> {
  const chunk = (content: string) => `data: ${JSON.stringify({ id: 'odd', object: 'chat.completion.chunk', created: 0, model: 'odd-model', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
  const server: Server = createHttpServer(async (req, res) => {
    let text = '';
    for await (const part of req) text += String(part);
    const behaviour = (JSON.parse(text || '{}') as { test_behaviour?: string }).test_behaviour;
    if (behaviour === 'html') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Bad gateway of some proxy</body></html>');
    if (behaviour === 'empty') return void res.writeHead(200, { 'content-type': 'application/json' }).end();
    if (behaviour === 'plain-stall') return void res.writeHead(200, { 'content-type': 'application/json' }).write('{"id":');
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(chunk('one '));
    if (behaviour === 'error-mid') return void res.end('data: {"error":{"message":"overloaded","type":"server_error"}}\n\n');
    res.write(chunk('two '));
    if (behaviour === 'done-then-hold') {
      res.write(`data: ${JSON.stringify({ id: 'odd', object: 'chat.completion.chunk', created: 0, model: 'odd-model', choices: [], usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11 } })}\n\n`);
      res.write('data: [DONE]\n\n');
    }
    // stall and done-then-hold: the connection stays open
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/**
 * POSTs `body` with Transfer-Encoding: chunked (no length) in 64 KiB writes, as fast as the socket
 * takes them, and resolves with the answer, which may come (with the connection closed) before the
 * whole body was sent.
 */
function postChunked(url: string, key: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest(url, { method: 'POST', headers: { ...bearer(key), 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
      answered = true;
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
      res.on('error', reject);
    });
    req.on('error', (err) => {
      if (!answered) reject(err); // writing after the refusal may meet the closed connection
    });
    let offset = 0;
    const write = () => {
      while (offset < body.length && !answered) {
        const piece = body.slice(offset, offset + 65_536);
        offset += piece.length;
        if (!req.write(piece)) {
          req.once('drain', write);
          return;
        }
      }
      if (!answered) req.end();
    };
    write();
  });
}

async function until<T>(what: string, probe: () => Promise<T | null | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null && value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * The OpenAI-compatible gateway driven by the real openai SDK, over a real socket, against local
 * fake upstreams; every call must leave exactly one usage record in the real database.
 */
const gatewaySuite = (database: 'sqlite' | 'postgres') => () => {
  let fake: FakeOpenAi; // the default upstream (OPENAI_BASE_URL)
  let local: FakeOpenAi; // a second upstream behind the `local/*` prefix route
  let slow: FakeOpenAi; // behind an upstream with a short timeout
  let drip: Awaited<ReturnType<typeof startDrippingUpstream>>;
  let odd: Awaited<ReturnType<typeof startOddUpstream>>;
  let t: TestApp;
  let pg: ScratchDatabase | undefined;
  let files: string;
  let baseURL: string;

  const sdk = (apiKey: string, headers: Record<string, string> = {}, maxRetries = 0) =>
    new OpenAI({ apiKey, baseURL, maxRetries, defaultHeaders: headers });
  const repo = () => t.app.get(DataSource).getRepository(LlmUsage);
  const flush = () => t.app.get(UsageRecorder).flush();
  const recordsWithId = async (id: string) => {
    await flush();
    return repo().findBy({ id });
  };
  const recordCount = async () => {
    await flush();
    return repo().count();
  };
  const priceOf = (r: LlmUsage) =>
    t.app.get(PricingService).price(
      { inputTokens: r.inputTokens, cachedInputTokens: r.cachedInputTokens, cacheWriteTokens: r.cacheWriteTokens, outputTokens: r.outputTokens, reasoningTokens: r.reasoningTokens },
      [r.responseModel, r.requestedModel],
      { provider: r.provider, at: r.createdAtMs },
    ).costNanos;

  beforeAll(async () => {
    if (database === 'postgres') pg = await createScratchPostgres();
    fake = await FakeOpenAi.start();
    local = await FakeOpenAi.start();
    slow = await FakeOpenAi.start({ defaultReply: { delayMs: 3_000 } });
    drip = await startDrippingUpstream();
    odd = await startOddUpstream();
    files = mkdtempSync(join(tmpdir(), 'asa-gateway-'));
    writeFileSync(join(files, 'slow.key'), 'slow-key-from-file\n');
    writeFileSync(
      join(files, 'gateway.json'),
      JSON.stringify({
        upstreams: {
          local: { base_url: local.baseUrl, provider: 'openai', api_key_env: 'LOCAL_UPSTREAM_KEY' },
          slow: { base_url: slow.baseUrl, provider: 'openai', api_key_file: 'slow.key', timeout_ms: 300 },
          down: { base_url: `http://127.0.0.1:${await closedPort()}/v1`, provider: 'openai' },
          drip: { base_url: drip.baseUrl, provider: 'openai' },
          odd: { base_url: odd.baseUrl, provider: 'openai', timeout_ms: 1_000 },
        },
        routes: [
          { model: 'local/*', upstream: 'local' },
          { model: 'slow-model', upstream: 'slow' },
          { model: 'down-model', upstream: 'down' },
          { model: 'drip-model', upstream: 'drip' },
          { model: 'odd-model', upstream: 'odd' },
          { model: 'gpt-*', upstream: 'default' },
          { model: 'text-embedding-3-small', upstream: 'default' },
        ],
      }),
    );
    t = await createTestApp({
      env: {
        OPENAI_BASE_URL: fake.baseUrl,
        OPENAI_API_KEY: PROVIDER_KEY,
        OPENAI_MAX_RETRIES: '0',
        LOCAL_UPSTREAM_KEY: 'local-key-from-env',
        GATEWAY_FILE: join(files, 'gateway.json'),
        GATEWAY_MAX_BODY_BYTES: String(3 * MIB),
        API_KEYS_FILE: writeApiKeysFile(files, [
          { name: 'admin', key: ADMIN_KEY },
          { name: 'alice', key: ALICE_KEY, userId: 'alice' },
          { name: 'bob', key: BOB_KEY, userId: 'bob' },
        ]),
        ...(pg ? { DATABASE_URL: pg.url } : {}),
      },
    });
    baseURL = `${await listenOnLoopback(t.app)}/v1`;
  });
  afterAll(async () => {
    await t?.close();
    await fake?.close();
    await local?.close();
    await slow?.close();
    await drip?.close();
    await odd?.close();
    await pg?.drop();
    if (files) rmSync(files, { recursive: true, force: true });
  });
  beforeEach(() => {
    fake.reset();
    local.reset();
    fake.setDefault({});
  });

  it('a chat call: the body reaches the upstream as sent (unknown fields kept), with the provider key; one exact record with user, task and tags', async () => {
    fake.enqueue({ content: 'one two three', usage: { prompt_tokens: 21, completion_tokens: 3, cached_tokens: 5 } });
    const before = await recordCount();
    const client = sdk(ALICE_KEY, { 'x-asa-task-id': 'task-chat-1', 'x-asa-tags': 'team=search, env=prod' });
    const { data, response } = await client.chat.completions
      .create({ ...CHAT, temperature: 0.2, custom_field: { nested: [1, 2] } } as OpenAI.ChatCompletionCreateParamsNonStreaming)
      .withResponse();

    expect(data.choices[0].message.content).toBe('one two three');
    const sent = fake.chatRequests()[0];
    expect(sent.body).toEqual({ ...CHAT, temperature: 0.2, custom_field: { nested: [1, 2] } });
    expect(sent.headers.authorization).toBe(`Bearer ${PROVIDER_KEY}`);
    const id = response.headers.get('x-asa-request-id')!;
    expect(sent.headers['x-asa-usage-id']).toBe(id);

    const records = await recordsWithId(id);
    expect(records).toHaveLength(1);
    expect(await recordCount()).toBe(before + 1);
    const r = records[0];
    expect(r).toMatchObject({
      userId: 'alice',
      taskId: 'task-chat-1',
      tags: { env: 'prod', team: 'search' },
      provider: 'openai',
      operation: 'chat',
      requestedModel: MODEL,
      inputTokens: 21,
      cachedInputTokens: 5,
      outputTokens: 3,
      totalTokens: 24,
      streamed: false,
      status: 'success',
      estimated: false,
    });
    expect(r.costNanos).toBeGreaterThan(0);
    expect(r.costNanos).toBe(priceOf(r));
    expect(response.headers.get('x-asa-cost-usd')).toBe(nanosToUsdExact(r.costNanos!));

    // Counted in the same metrics as the agent's calls; tags never become labels.
    const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^llm_requests_total\{[^}]*model="gpt-4o-mini"[^}]*\} [1-9]/m);
    expect(metrics).not.toMatch(/team|search|task-chat-1|alice/);
  });

  it('a streamed chat: usage is asked upstream but its extra chunk is not passed to a client that did not ask; the record has the exact usage', async () => {
    fake.enqueue({ content: 'alpha beta gamma delta', usage: { prompt_tokens: 30, completion_tokens: 4 } });
    const { data: stream, response } = await sdk(ALICE_KEY).chat.completions.create({ ...CHAT, stream: true }).withResponse();
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);

    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('alpha beta gamma delta');
    expect(chunks.every((c) => c.choices.length > 0)).toBe(true);
    expect(chunks.filter((c) => c.usage)).toEqual([]);
    expect(fake.chatRequests()[0].body.stream_options).toEqual({ include_usage: true });
    expect(response.headers.get('x-asa-cost-usd')).toBeNull();

    const [r] = await recordsWithId(response.headers.get('x-asa-request-id')!);
    expect(r).toMatchObject({ userId: 'alice', streamed: true, status: 'success', inputTokens: 30, outputTokens: 4, estimated: false });
    expect(r.timeToFirstTokenMs).not.toBeNull();
    expect(r.costNanos).toBe(priceOf(r));
  });

  it('a streamed chat whose client asked for usage gets the usage chunk', async () => {
    fake.enqueue({ content: 'a b', usage: { prompt_tokens: 9, completion_tokens: 2 } });
    const stream = await sdk(ALICE_KEY).chat.completions.create({ ...CHAT, stream: true, stream_options: { include_usage: true } });
    const usage: OpenAI.CompletionUsage[] = [];
    for await (const chunk of stream) if (chunk.usage) usage.push(chunk.usage);
    expect(usage).toHaveLength(1);
    expect(usage[0]).toMatchObject({ prompt_tokens: 9, completion_tokens: 2 });
  });

  it('embeddings: one record with the input tokens the upstream reported', async () => {
    fake.enqueue({ usage: { prompt_tokens: 7, completion_tokens: 0 } });
    const { data, response } = await sdk(BOB_KEY).embeddings.create({ model: 'text-embedding-3-small', input: ['hello world', 'again'] }).withResponse();
    expect(data.data).toHaveLength(2);
    const [r] = await recordsWithId(response.headers.get('x-asa-request-id')!);
    expect(r).toMatchObject({ userId: 'bob', operation: 'embeddings', inputTokens: 7, outputTokens: 0, status: 'success', estimated: false });
    expect(r.costNanos).toBe(priceOf(r));
    expect(response.headers.get('x-asa-cost-usd')).toBe(nanosToUsdExact(r.costNanos!));
  });

  it('the Responses API, plain and streamed: tokens from its usage (the final event when streamed)', async () => {
    fake.enqueue({ content: 'plain answer', usage: { prompt_tokens: 12, completion_tokens: 2, reasoning_tokens: 1 } });
    const { data, response } = await sdk(ALICE_KEY).responses.create({ model: MODEL, input: 'hi there', instructions: 'be brief' }).withResponse();
    expect(data.output_text).toBe('plain answer');
    const [plain] = await recordsWithId(response.headers.get('x-asa-request-id')!);
    expect(plain).toMatchObject({ operation: 'responses', inputTokens: 12, outputTokens: 2, reasoningTokens: 1, streamed: false, estimated: false });
    expect(response.headers.get('x-asa-cost-usd')).toBe(nanosToUsdExact(plain.costNanos!));

    fake.enqueue({ content: 'streamed answer here', usage: { prompt_tokens: 15, completion_tokens: 3 } });
    const { data: stream, response: streamedResponse } = await sdk(ALICE_KEY).responses.create({ model: MODEL, input: 'again', stream: true }).withResponse();
    const types: string[] = [];
    let text = '';
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.output_text.delta') text += event.delta;
    }
    expect(text).toBe('streamed answer here');
    expect(types[types.length - 1]).toBe('response.completed');
    const [streamed] = await recordsWithId(streamedResponse.headers.get('x-asa-request-id')!);
    expect(streamed).toMatchObject({ streamed: true, inputTokens: 15, outputTokens: 3, status: 'success', estimated: false });
    expect(streamed.timeToFirstTokenMs).not.toBeNull();
    expect(fake.responsesRequests()).toHaveLength(2);
  });

  it('prompts are never tokenized on the event loop: admission reserves their UTF-8 bound, and the exact count made in a worker thread is what an estimated record carries', async () => {
    const estimator = t.app.get(TokenEstimator);
    const exact = new TokenCounter(); // the test's own counter, on its own thread of thought
    // The tokenizer on the service's event loop: none of these may run for a gateway call.
    const tokenizers = ['countChatPrompt', 'countText', 'countEmbeddingInput', 'countResponsesInput'] as const;
    const sync = tokenizers.map((m) => vi.spyOn(estimator, m));
    const inWorker = vi.spyOn(estimator, 'countAsync');
    try {
      // A large prompt (close to the body limit) and providers that report no usage: every count is local.
      const big = 'lorem ipsum dolor sit amet, '.repeat(10_000);
      fake.enqueue({ content: 'chat reply words', usage: null }, { content: 'responses reply', usage: null }, { usage: null });
      const chatBody = { model: MODEL, messages: [{ role: 'system' as const, content: 'be brief' }, { role: 'user' as const, content: big }] };
      const chat = await sdk(ALICE_KEY).chat.completions.create(chatBody).withResponse();
      const responsesBody = { model: MODEL, instructions: 'answer in one line', input: [{ role: 'user' as const, content: 'what is 2+2?' }, { type: 'function_call_output' as const, call_id: 'c1', output: '4' }] };
      const responses = await sdk(ALICE_KEY).responses.create(responsesBody).withResponse();
      const embedding = await sdk(ALICE_KEY).embeddings.create({ model: 'text-embedding-3-small', input: ['first text', 'second one'] }).withResponse();

      const [c] = await recordsWithId(chat.response.headers.get('x-asa-request-id')!);
      expect(c).toMatchObject({ status: 'success', estimated: true, inputTokens: exact.countChatPrompt(chatBody), outputTokens: exact.countText('chat reply words', MODEL) });
      const [r] = await recordsWithId(responses.response.headers.get('x-asa-request-id')!);
      expect(r).toMatchObject({ status: 'success', estimated: true, inputTokens: exact.countResponsesInput(responsesBody), outputTokens: exact.countText('responses reply', MODEL) });
      const [e] = await recordsWithId(embedding.response.headers.get('x-asa-request-id')!);
      expect(e).toMatchObject({ status: 'success', estimated: true, inputTokens: exact.countEmbeddingInput(['first text', 'second one'], 'text-embedding-3-small') });

      tokenizers.forEach((m, i) => expect(sync[i], `TokenEstimator.${m} ran on the event loop`).not.toHaveBeenCalled());
      expect(inWorker.mock.calls.map(([job]) => job.kind)).toEqual(expect.arrayContaining(['chat', 'responses', 'embedding']));
    } finally {
      for (const spy of [...sync, inWorker]) spy.mockRestore();
    }
  });

  it('a gateway body may be larger than the API\'s 1 MiB, up to GATEWAY_MAX_BODY_BYTES; past it a 413 names the limit and the upstream is never called', async () => {
    fake.enqueue({ content: 'seen', usage: { prompt_tokens: 500_000, completion_tokens: 1 } });
    const twoMib = { model: MODEL, messages: [{ role: 'user' as const, content: 'a'.repeat(2 * MIB) }] };
    const ok = await sdk(ALICE_KEY).chat.completions.create(twoMib).withResponse();
    expect(ok.data.choices[0].message.content).toBe('seen');
    expect(fake.chatRequests()).toHaveLength(1);
    expect(await recordsWithId(ok.response.headers.get('x-asa-request-id')!)).toEqual([expect.objectContaining({ status: 'success', inputTokens: 500_000 })]);

    const tooBig = { model: MODEL, messages: [{ role: 'user' as const, content: 'a'.repeat(3 * MIB) }] };
    const refused = await sdk(ALICE_KEY).chat.completions.create(tooBig).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(APIError);
    expect((refused as APIError).status).toBe(413);
    expect((refused as APIError).message).toMatch(/larger than this endpoint's limit of 3 MiB \(GATEWAY_MAX_BODY_BYTES\)/);
    expect(fake.chatRequests()).toHaveLength(1);
  });

  it('the service\'s own API keeps its 1 MiB limit, whether the body declares its length or is sent in chunks', async () => {
    const origin = baseURL.replace(/\/v1$/, '');
    const body = JSON.stringify({ id: 'big', scope: {}, limit_usd: '1', window: 'day', note: 'n'.repeat(MIB) });
    const declared = await fetch(`${origin}/api/v1/quotas`, { method: 'POST', headers: { ...bearer(ADMIN_KEY), 'content-type': 'application/json' }, body });
    expect(declared.status).toBe(413);
    expect(await declared.json()).toMatchObject({ statusCode: 413, error: 'Payload Too Large', message: "the request body is larger than this endpoint's limit of 1 MiB" });
    // No content-length: the body is read, then refused at the same limit.
    const chunked = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = httpRequest(`${origin}/api/v1/quotas`, { method: 'POST', headers: { ...bearer(ADMIN_KEY), 'content-type': 'application/json', 'transfer-encoding': 'chunked' } }, (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, text }));
      });
      req.on('error', reject);
      for (let i = 0; i < body.length; i += 65_536) req.write(body.slice(i, i + 65_536));
      req.end();
    });
    expect(chunked.status).toBe(413);
    expect(JSON.parse(chunked.text).message).toBe("the request body is larger than this endpoint's limit of 1 MiB");
  });

  it('a chunked body (no length) over the largest limit gets the 413 naming its route\'s limit, not Fastify\'s own, and the upstream is never called', async () => {
    const origin = baseURL.replace(/\/v1$/, '');
    const gateway = await postChunked(`${baseURL}/chat/completions`, ALICE_KEY, JSON.stringify({ ...CHAT, messages: [{ role: 'user', content: 'a'.repeat(4 * MIB) }] }));
    expect(gateway.status).toBe(413);
    expect(JSON.parse(gateway.text)).toMatchObject({
      error: { type: 'invalid_request_error', message: "the request body is larger than this endpoint's limit of 3 MiB (GATEWAY_MAX_BODY_BYTES)" },
    });
    expect(fake.chatRequests()).toHaveLength(0);
    const api = await postChunked(`${origin}/api/v1/quotas`, ADMIN_KEY, JSON.stringify({ id: 'huge', scope: {}, limit_usd: '1', window: 'day', note: 'n'.repeat(4 * MIB) }));
    expect(api.status).toBe(413);
    expect(JSON.parse(api.text)).toMatchObject({ statusCode: 413, message: "the request body is larger than this endpoint's limit of 1 MiB" });
    // Under the limit, a chunked body passes whole; and the connections closed after the refusals left the service answering.
    fake.enqueue({ content: 'still here' });
    const content = 'b'.repeat(2 * MIB);
    const ok = await postChunked(`${baseURL}/chat/completions`, ALICE_KEY, JSON.stringify({ ...CHAT, messages: [{ role: 'user', content }] }));
    expect(ok.status, ok.text).toBe(200);
    expect(JSON.parse(ok.text).choices[0].message.content).toBe('still here');
    expect(fake.chatRequests()[0].body).toMatchObject({ messages: [{ role: 'user', content }] });
  });

  it('a gateway call reserves its prompt\'s UTF-8 bound plus its output allowance on a token quota, as the agent\'s calls do', async () => {
    // 24,000 bytes that are about 8,000 tokens: a 12,000-token quota admits the exact count but not the bound.
    const prompt = 'ab '.repeat(8_000);
    const body = { model: MODEL, max_tokens: 50, messages: [{ role: 'user' as const, content: prompt }] };
    const exactTokens = new TokenCounter().countChatPrompt(body);
    expect(exactTokens + 50).toBeLessThan(12_000);
    const rule = { id: 'gw-bob-tokens', scope: { user_id: 'bob' }, limit_tokens: 12_000, window: 'day', action: 'block' };
    const created = await t.app.inject({ method: 'POST', url: '/api/v1/quotas', payload: rule, headers: bearer(ADMIN_KEY) });
    expect(created.statusCode, created.body).toBe(201);
    try {
      const err = await sdk(BOB_KEY).chat.completions.create(body).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(APIError);
      expect((err as APIError).status).toBe(429);
      expect((err as APIError).message).toContain('quota rule "gw-bob-tokens"');
      expect(fake.chatRequests()).toHaveLength(0);

      // A prompt whose bound fits passes, and the quota then holds what was really used.
      fake.enqueue({ content: 'ok', usage: { prompt_tokens: 11, completion_tokens: 1 } });
      const ok = await sdk(BOB_KEY).chat.completions.create({ ...body, messages: [{ role: 'user', content: 'short prompt' }] });
      expect(ok.choices[0].message.content).toBe('ok');
    } finally {
      await t.app.inject({ method: 'DELETE', url: '/api/v1/quotas/gw-bob-tokens', headers: bearer(ADMIN_KEY) });
    }
  });

  it('an output limit that is not a whole number >= 0 is a 400 naming the field, before the upstream; of two chat limits the larger is reserved', async () => {
    const before = await recordCount();
    for (const [field, value] of [['max_tokens', '100000'], ['max_tokens', -1], ['max_completion_tokens', 1.5], ['max_tokens', {}], ['max_tokens', true]] as const) {
      const err = (await sdk(ALICE_KEY).chat.completions.create({ ...CHAT, [field]: value } as unknown as typeof CHAT).catch((e: unknown) => e)) as APIError;
      expect(err, `${field}=${JSON.stringify(value)}`).toBeInstanceOf(APIError);
      expect(err.status).toBe(400);
      expect(err.param).toBe(field);
      expect(err.type).toBe('invalid_request_error');
      expect(err.message).toContain(`'${field}'`);
    }
    const responses = (await sdk(ALICE_KEY).responses.create({ model: MODEL, input: 'hi', max_output_tokens: '5' } as never).catch((e: unknown) => e)) as APIError;
    expect(responses.status).toBe(400);
    expect(responses.param).toBe('max_output_tokens');
    expect(fake.chatRequests()).toHaveLength(0);
    expect(fake.responsesRequests()).toHaveLength(0);
    expect(await recordCount()).toBe(before);

    // A 12,000-token quota: max_completion_tokens 10 alone fits, but beside max_tokens 100,000 the call may produce that much.
    const rule = { id: 'gw-bob-output', scope: { user_id: 'bob' }, limit_tokens: 12_000, window: 'day', action: 'block' };
    const created = await t.app.inject({ method: 'POST', url: '/api/v1/quotas', payload: rule, headers: bearer(ADMIN_KEY) });
    expect(created.statusCode, created.body).toBe(201);
    try {
      const both = (await sdk(BOB_KEY).chat.completions.create({ ...CHAT, max_tokens: 100_000, max_completion_tokens: 10 }).catch((e: unknown) => e)) as APIError;
      expect(both.status).toBe(429);
      expect(both.message).toContain('quota rule "gw-bob-output"');
      expect(fake.chatRequests()).toHaveLength(0);
      fake.enqueue({ content: 'ok', usage: { prompt_tokens: 11, completion_tokens: 1 } });
      const ok = await sdk(BOB_KEY).chat.completions.create({ ...CHAT, max_completion_tokens: 10 });
      expect(ok.choices[0].message.content).toBe('ok');
    } finally {
      await t.app.inject({ method: 'DELETE', url: '/api/v1/quotas/gw-bob-output', headers: bearer(ADMIN_KEY) });
    }
  });

  it('a model name longer than the usage columns take (128 characters) is a 400 naming model, before the upstream; 128 are recorded whole, a longer response model cut', async () => {
    const before = await recordCount();
    for (const model of [`gpt-${'x'.repeat(125)}`, `gpt-${'x'.repeat(60_000)}`]) {
      const err = (await sdk(ALICE_KEY).chat.completions.create({ ...CHAT, model }).catch((e: unknown) => e)) as APIError;
      expect(err).toBeInstanceOf(APIError);
      expect(err.status).toBe(400);
      expect(err.param).toBe('model');
      expect(err.type).toBe('invalid_request_error');
      expect(err.message).toContain(`at most 128 characters (got ${model.length})`);
    }
    const embeddings = (await sdk(ALICE_KEY).embeddings.create({ model: `gpt-${'x'.repeat(125)}`, input: 'hi' }).catch((e: unknown) => e)) as APIError;
    expect(embeddings.status).toBe(400);
    expect(fake.requests).toHaveLength(0);
    expect(await recordCount()).toBe(before);

    // The longest name is taken and stored whole; an upstream answering with a longer model name still leaves its record.
    const longest = `gpt-${'x'.repeat(124)}`;
    fake.enqueue({ content: 'ok', model: 'r'.repeat(300) });
    const ok = await sdk(ALICE_KEY).chat.completions.create({ ...CHAT, model: longest }).withResponse();
    expect(ok.data.model).toBe('r'.repeat(300));
    const [record] = await recordsWithId(ok.response.headers.get('x-asa-request-id')!);
    expect(record).toMatchObject({ status: 'success', requestedModel: longest, responseModel: 'r'.repeat(128) });
  });

  it('a stream the client abandons stops the upstream call and is recorded as abandoned, with estimated tokens', async () => {
    const words = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
    fake.enqueue({ content: words, chunkDelayMs: 100 });
    const controller = new AbortController();
    const { data: stream, response } = await sdk(ALICE_KEY, { 'x-asa-tags': 'run=abandon' })
      .chat.completions.create({ ...CHAT, stream: true }, { signal: controller.signal })
      .withResponse();
    const id = response.headers.get('x-asa-request-id')!;
    let received = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta?.content) received++;
      if (received === 3) {
        controller.abort();
        break;
      }
    }

    const r = await until('the abandoned record', async () => (await recordsWithId(id))[0]);
    expect(r).toMatchObject({ status: 'error', errorType: 'abandoned', streamed: true, estimated: true, tags: { run: 'abandon' } });
    expect(r.inputTokens).toBe(new TokenCounter().countChatPrompt(CHAT)); // counted exactly, in a worker thread
    expect(r.outputTokens).toBeGreaterThanOrEqual(3); // what reached the gateway before the client left
    expect(r.outputTokens).toBeLessThan(40);
    expect(r.costNanos).toBe(priceOf(r));
  });

  it('a client that leaves a stream makes the gateway close the upstream stream before its end', async () => {
    const controller = new AbortController();
    const { data: stream, response } = await sdk(ALICE_KEY)
      .chat.completions.create({ ...CHAT, model: 'drip-model', stream: true }, { signal: controller.signal })
      .withResponse();
    let received = 0;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta?.content) received++;
      if (received === 2) {
        controller.abort();
        break;
      }
    }
    await until('the upstream stream to be closed', async () => (drip.closedEarly() === 1 ? true : null));
    const r = await until('the abandoned record', async () => (await recordsWithId(response.headers.get('x-asa-request-id')!))[0]);
    expect(r).toMatchObject({ status: 'error', errorType: 'abandoned', estimated: true });
  });

  it('a client that leaves before the answer stops the upstream call and is recorded as abandoned, its prompt counted', async () => {
    fake.enqueue({ content: 'too late', delayMs: 10_000 });
    const controller = new AbortController();
    const sent = sdk(ALICE_KEY, { 'x-asa-tags': 'run=left-before-answer' }).chat.completions.create(CHAT, { signal: controller.signal });
    await until('the call to reach the upstream', async () => (fake.chatRequests().length > 0 ? true : null));
    controller.abort();
    await expect(sent).rejects.toThrow(/abort/i);

    const r = await until('the abandoned record', async () => {
      await flush();
      return (await repo().find()).find((x) => x.tags?.run === 'left-before-answer');
    });
    expect(r).toMatchObject({ status: 'error', errorType: 'abandoned', streamed: false, estimated: true, outputTokens: 0, userId: 'alice' });
    expect(r.inputTokens).toBe(new TokenCounter().countChatPrompt(CHAT));
    expect(r.costNanos).toBe(priceOf(r));
    expect(r.latencyMs).toBeLessThan(9_000); // ended when the client left, not when the upstream would have answered
  });

  it('an answer (a plain body, a stream\'s [DONE]) goes out only once its record is in the journal: a kill after the client saw it cannot turn it into an interrupted call', async () => {
    const journal = t.app.get(UsageJournal);
    const realEnded = journal.ended.bind(journal);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const journaled: string[] = [];
    // The real end entry is written; only its promise is held, as a slow disk would hold it.
    journal.ended = async (record) => {
      await realEnded(record);
      journaled.push(record.id);
      await gate;
    };
    try {
      fake.enqueue({ content: 'plain answer' });
      let plainAnswered = false;
      const plain = sdk(ALICE_KEY)
        .chat.completions.create(CHAT)
        .then((r) => ((plainAnswered = true), r));
      await until('the plain call\'s record in the journal', async () => (journaled.length === 1 ? true : null));

      fake.enqueue({ content: 'one two three', usage: { prompt_tokens: 9, completion_tokens: 3 } });
      const res = await fetch(`${baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ALICE_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ...CHAT, stream: true }),
      });
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      // A read that loses the race with the timer is kept for the next call, so no chunk is lost.
      let pending: ReturnType<typeof reader.read> | null = null;
      const read = async (ms: number) => {
        pending ??= reader.read();
        const next = await Promise.race([pending, sleep(ms).then(() => null)]);
        if (next === null) return null;
        pending = null;
        if (!next.done) text += decoder.decode(next.value, { stream: true });
        return next;
      };
      while (!text.includes('three')) expect(await read(5_000)).not.toBeNull();
      await until('the stream\'s record in the journal', async () => (journaled.length === 2 ? true : null));
      while ((await read(300)) !== null && !text.includes('[DONE]'));
      expect(text).not.toContain('[DONE]');
      expect(plainAnswered).toBe(false);

      release();
      expect((await plain).choices[0].message.content).toBe('plain answer');
      while (!text.includes('[DONE]')) expect((await read(5_000))?.done).not.toBe(true);
    } finally {
      release();
      journal.ended = realEnded;
    }
  });

  describe('an upstream that misbehaves after its headers', () => {
    const post = (behaviour: string, stream: boolean) =>
      fetch(`${baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ALICE_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ...CHAT, model: 'odd-model', stream, test_behaviour: behaviour }),
      });
    const recordOf = (res: Response) => until('its record', async () => (await recordsWithId(res.headers.get('x-asa-request-id')!))[0]);

    it('a stream that goes quiet is ended after the upstream\'s timeout and recorded as a timeout', async () => {
      const res = await post('stall', true);
      expect(res.status).toBe(200);
      const text = await res.text().catch(() => '(cut)');
      expect(text).not.toContain('[DONE]');
      expect(await recordOf(res)).toMatchObject({ status: 'error', errorType: 'timeout', estimated: true });
    });

    it('a plain answer that goes quiet halfway is a 504 and a timeout', async () => {
      const res = await post('plain-stall', false);
      expect(res.status).toBe(504);
      expect(await res.json()).toMatchObject({ error: { code: 'upstream_timeout' } });
      expect(await recordOf(res)).toMatchObject({ status: 'error', errorType: 'timeout' });
    });

    it('the stream\'s [DONE] reaches the client at once even if the upstream keeps the connection open', async () => {
      const res = await post('done-then-hold', true);
      const text = await res.text(); // ends: the gateway closes the stream after [DONE]
      expect(text).toContain('data: [DONE]');
      expect(await recordOf(res)).toMatchObject({ status: 'success', inputTokens: 9, outputTokens: 2, estimated: false });
    });

    it('an error the upstream sends inside a 200 stream is passed on and recorded as an error, not a success', async () => {
      const res = await post('error-mid', true);
      expect(await res.text()).toContain('overloaded');
      expect(await recordOf(res)).toMatchObject({ status: 'error', errorType: 'provider_error', estimated: true });
    });

    it('a 200 whose body is not JSON (an HTML page, nothing), or a stream answered without SSE, is a 502 in OpenAI\'s shape and an invalid_response', async () => {
      for (const [behaviour, stream] of [['html', false], ['empty', false], ['html', true]] as const) {
        const res = await post(behaviour, stream);
        expect(res.status, `${behaviour} ${stream}`).toBe(502);
        expect(await res.json()).toMatchObject({ error: { code: 'upstream_invalid_response' } });
        expect(await recordOf(res)).toMatchObject({ status: 'error', errorType: 'invalid_response' });
      }
    });
  });

  it('a quota refuses a gateway call with 429 budget_exceeded naming the rule, before the upstream is called, and SDKs do not retry it', async () => {
    const rule = { id: 'gw-bob-cap', scope: { user_id: 'bob' }, limit_usd: 0.000000001, window: 'day', action: 'block' };
    const created = await t.app.inject({ method: 'POST', url: '/api/v1/quotas', payload: rule, headers: bearer(ADMIN_KEY) });
    expect(created.statusCode, created.body).toBe(201);
    const before = await recordCount();
    try {
      const err = await sdk(BOB_KEY, {}, 2).chat.completions.create(CHAT).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(APIError);
      const e = err as APIError;
      expect(e.status).toBe(429);
      expect(e.code).toBe('budget_exceeded');
      expect(e.message).toContain('quota rule "gw-bob-cap"');
      expect(e.headers?.get('x-should-retry')).toBe('false');
      expect(fake.chatRequests()).toHaveLength(0);
      expect(await recordCount()).toBe(before);
      const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
      // One refusal: the SDK (maxRetries 2) did not come back.
      expect(metrics).toMatch(/^llm_blocked_requests_total\{rule="gw-bob-cap"\} 1$/m);
    } finally {
      await t.app.inject({ method: 'DELETE', url: '/api/v1/quotas/gw-bob-cap', headers: bearer(ADMIN_KEY) });
    }
  });

  it('a user key cannot account calls to another user or to another user\'s task; an admin key may name the user, but not against the task\'s', async () => {
    const asBob = await sdk(ALICE_KEY, { 'x-asa-user-id': 'bob' }).chat.completions.create(CHAT).catch((e: unknown) => e);
    expect(asBob).toBeInstanceOf(APIError);
    expect((asBob as APIError).status).toBe(403);
    expect((asBob as APIError).message).toContain('only an admin key may set x-asa-user-id');

    // bob's task (it has a record of bob's), then alice tries to put calls under it
    fake.enqueue({});
    await sdk(BOB_KEY, { 'x-asa-task-id': 'bobs-task' }).chat.completions.create(CHAT);
    await flush();
    const intoBobsTask = await sdk(ALICE_KEY, { 'x-asa-task-id': 'bobs-task' }).chat.completions.create(CHAT).catch((e: unknown) => e);
    expect((intoBobsTask as APIError).status).toBe(403);
    expect(fake.chatRequests()).toHaveLength(1);

    // An admin key naming another user than the task's would hide the task's usage from bob.
    const carolIntoBobs = await sdk(ADMIN_KEY, { 'x-asa-user-id': 'carol', 'x-asa-task-id': 'bobs-task' }).chat.completions.create(CHAT).catch((e: unknown) => e);
    expect((carolIntoBobs as APIError).status).toBe(403);
    expect((carolIntoBobs as APIError).message).toContain('task "bobs-task" belongs to user "bob"');
    expect(fake.chatRequests()).toHaveLength(1);

    fake.enqueue({}, {});
    const { response } = await sdk(ADMIN_KEY, { 'x-asa-user-id': 'carol', 'x-asa-task-id': 'carols-task' }).chat.completions.create(CHAT).withResponse();
    const [r] = await recordsWithId(response.headers.get('x-asa-request-id')!);
    expect(r).toMatchObject({ userId: 'carol', taskId: 'carols-task' });
    // Leaving the user out, the call is the task's user's.
    const admin = await sdk(ADMIN_KEY, { 'x-asa-task-id': 'bobs-task' }).chat.completions.create(CHAT).withResponse();
    const [a] = await recordsWithId(admin.response.headers.get('x-asa-request-id')!);
    expect(a).toMatchObject({ userId: 'bob', taskId: 'bobs-task' });
    const bobsView = await t.app.inject({ method: 'GET', url: '/api/v1/usage/task/bobs-task', headers: bearer(BOB_KEY) });
    expect(bobsView.statusCode, bobsView.body).toBe(200);
    expect(bobsView.json()).toMatchObject({ total_requests: 2 });
  });

  it('a new task id is its first caller\'s from the moment the call is admitted: another user is refused while that call is still in flight, and the owner sees the task at once', async () => {
    fake.enqueue({ content: 'slow answer', delayMs: 1_500 });
    const bobsCall = sdk(BOB_KEY, { 'x-asa-task-id': 'claimed-in-flight' }).chat.completions.create(CHAT).withResponse();
    await until('bob\'s call to reach the upstream', async () => (fake.chatRequests().length === 1 ? true : null));

    const alice = await sdk(ALICE_KEY, { 'x-asa-task-id': 'claimed-in-flight' }).chat.completions.create(CHAT).catch((e: unknown) => e);
    expect(alice).toBeInstanceOf(APIError);
    expect((alice as APIError).status).toBe(403);
    expect((alice as APIError).message).toContain('task "claimed-in-flight" belongs to another user');
    const adminAsAlice = await sdk(ADMIN_KEY, { 'x-asa-user-id': 'alice', 'x-asa-task-id': 'claimed-in-flight' }).chat.completions.create(CHAT).catch((e: unknown) => e);
    expect((adminAsAlice as APIError).status).toBe(403);
    expect(fake.chatRequests()).toHaveLength(1);
    const taskUsage = (key: string) => t.app.inject({ method: 'GET', url: '/api/v1/usage/task/claimed-in-flight', headers: bearer(key) });
    const early = await taskUsage(BOB_KEY);
    expect(early.statusCode, early.body).toBe(200);
    expect(early.json()).toMatchObject({ task_id: 'claimed-in-flight', total_requests: 0 });
    expect((await taskUsage(ALICE_KEY)).statusCode).toBe(404);

    const { response } = await bobsCall;
    const [r] = await recordsWithId(response.headers.get('x-asa-request-id')!);
    expect(r).toMatchObject({ userId: 'bob', taskId: 'claimed-in-flight', status: 'success' });
    expect((await taskUsage(BOB_KEY)).json()).toMatchObject({ total_requests: 1 });
  });

  it('a request refused as malformed or for an unrouted model claims no task id', async () => {
    const unrouted = await sdk(BOB_KEY, { 'x-asa-task-id': 'unclaimed-task' }).chat.completions.create({ ...CHAT, model: 'no-such-model' }).catch((e: unknown) => e);
    expect((unrouted as APIError).status).toBe(404);
    const malformed = await sdk(BOB_KEY, { 'x-asa-task-id': 'unclaimed-task' }).chat.completions.create({ ...CHAT, max_tokens: -1 }).catch((e: unknown) => e);
    expect((malformed as APIError).status).toBe(400);
    fake.enqueue({});
    const { response } = await sdk(ALICE_KEY, { 'x-asa-task-id': 'unclaimed-task' }).chat.completions.create(CHAT).withResponse();
    const [r] = await recordsWithId(response.headers.get('x-asa-request-id')!);
    expect(r).toMatchObject({ userId: 'alice', taskId: 'unclaimed-task' });
  });

  it('first calls of two users racing for one new task id: one user gets it, every call of the other is refused, and no record of the loser is under it', async () => {
    const task = 'contested-task';
    const calls = [ALICE_KEY, BOB_KEY, ALICE_KEY, BOB_KEY, ALICE_KEY, BOB_KEY].map((key) =>
      sdk(key, { 'x-asa-task-id': task })
        .chat.completions.create(CHAT)
        .withResponse()
        .then(({ response }) => ({ key, id: response.headers.get('x-asa-request-id')! }))
        .catch((e: unknown) => ({ key, status: (e as APIError).status })),
    );
    const results = await Promise.all(calls);
    const won = results.filter((r): r is { key: string; id: string } => 'id' in r);
    const lost = results.filter((r) => !('id' in r));
    expect(won).toHaveLength(3);
    const winner = won[0].key;
    expect(won.every((r) => r.key === winner)).toBe(true);
    expect(lost.every((r) => r.key !== winner && 'status' in r && r.status === 403)).toBe(true);
    await flush();
    const underTask = await repo().findBy({ taskId: task });
    expect(underTask).toHaveLength(3);
    expect(new Set(underTask.map((r) => r.userId))).toEqual(new Set([winner === ALICE_KEY ? 'alice' : 'bob']));
  });

  it('the migration that brought task id claims gives each task id already recorded to the user of its first call', async () => {
    fake.enqueue({}, {});
    await sdk(BOB_KEY, { 'x-asa-task-id': 'recorded-before-claims' }).chat.completions.create(CHAT);
    await sdk(ADMIN_KEY, { 'x-asa-task-id': 'recorded-without-user' }).chat.completions.create(CHAT);
    await flush();
    const ds = t.app.get(DataSource);
    const owners = async () =>
      Object.fromEntries(
        (await ds.query(`SELECT task_id, user_id FROM gateway_tasks WHERE task_id IN ('recorded-before-claims', 'recorded-without-user')`)).map(
          (row: { task_id: string; user_id: string | null }) => [row.task_id, row.user_id],
        ),
      );
    // Back to before CreateGatewayTasks (it and any later migration undone, newest first), then forward again.
    for (let i = MIGRATIONS.indexOf(CreateGatewayTasks1764800000000); i < MIGRATIONS.length; i++) await ds.undoLastMigration({ transaction: 'each' });
    await expect(ds.query('SELECT COUNT(*) FROM gateway_tasks')).rejects.toThrow();
    await ds.runMigrations({ transaction: 'each' });
    expect(await owners()).toEqual({ 'recorded-before-claims': 'bob', 'recorded-without-user': null });
  });

  it('a prefix route sends the model without its prefix to its own upstream, with that upstream\'s key', async () => {
    const { response } = await sdk(ALICE_KEY).chat.completions.create({ ...CHAT, model: 'local/gpt-4o-mini' }).withResponse();
    expect(local.chatRequests()).toHaveLength(1);
    expect(local.chatRequests()[0].body.model).toBe('gpt-4o-mini');
    expect(local.chatRequests()[0].headers.authorization).toBe('Bearer local-key-from-env');
    expect(fake.chatRequests()).toHaveLength(0);
    const [r] = await recordsWithId(response.headers.get('x-asa-request-id')!);
    expect(r).toMatchObject({ requestedModel: 'gpt-4o-mini', userId: 'alice' });
  });

  it('errors come back in OpenAI\'s shape: unknown model 404, upstream error passed through, unreachable 502, timeout 504, bad JSON 400, no key 401', async () => {
    const unknown = (await sdk(ALICE_KEY).chat.completions.create({ ...CHAT, model: 'nobody-routes-this' }).catch((e: unknown) => e)) as APIError;
    expect(unknown.status).toBe(404);
    expect(unknown.code).toBe('model_not_found');
    expect(unknown.param).toBe('model');

    fake.enqueue({ error: { status: 400, message: 'messages[0] is broken upstream' } });
    const upstream = (await sdk(ALICE_KEY).chat.completions.create(CHAT).catch((e: unknown) => e)) as APIError;
    expect(upstream.status).toBe(400);
    expect(upstream.message).toContain('messages[0] is broken upstream');
    expect(upstream.type).toBe('invalid_request_error');
    const [failed] = await recordsWithId(upstream.headers!.get('x-asa-request-id')!);
    expect(failed).toMatchObject({ status: 'error', errorType: 'http_400', costNanos: 0 });

    const down = (await sdk(ALICE_KEY).chat.completions.create({ ...CHAT, model: 'down-model' }).catch((e: unknown) => e)) as APIError;
    expect(down.status).toBe(502);
    expect(down.code).toBe('upstream_unreachable');

    // A plain call whose upstream answer breaks off midway: a 502 in OpenAI's shape, the call recorded as failed.
    const cut = (await sdk(ALICE_KEY).chat.completions.create({ ...CHAT, model: 'drip-model', test_cut_after: 2 } as typeof CHAT).catch((e: unknown) => e)) as APIError;
    expect(cut.status).toBe(502);
    expect(cut.code).toBe('upstream_unreachable');
    expect(cut.message).toContain("The upstream's answer broke off before its end");
    const [cutRecord] = await recordsWithId(cut.headers!.get('x-asa-request-id')!);
    expect(cutRecord).toMatchObject({ status: 'error', requestedModel: 'drip-model' });

    const timeout = (await sdk(ALICE_KEY).chat.completions.create({ ...CHAT, model: 'slow-model' }).catch((e: unknown) => e)) as APIError;
    expect(timeout.status).toBe(504);
    expect(slow.chatRequests()[0].headers.authorization).toBe('Bearer slow-key-from-file');

    const badJson = await fetch(`${baseURL}/chat/completions`, { method: 'POST', headers: { ...bearer(ALICE_KEY), 'content-type': 'application/json' }, body: '{"model": ' });
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as { error: { type: string; message: string } }).error.type).toBe('invalid_request_error');

    const noModel = await fetch(`${baseURL}/chat/completions`, { method: 'POST', headers: { ...bearer(ALICE_KEY), 'content-type': 'application/json' }, body: '{"messages": []}' });
    expect(noModel.status).toBe(400);
    expect(await noModel.json()).toMatchObject({ error: { param: 'model', type: 'invalid_request_error' } });

    // The service's own input checks answer in OpenAI's shape here too.
    const post = (body: string, contentType = 'application/json') =>
      fetch(`${baseURL}/chat/completions`, { method: 'POST', headers: { ...bearer(ALICE_KEY), 'content-type': contentType }, body });
    for (const [res, status, text] of [
      [await post(JSON.stringify({ ...CHAT, messages: [{ role: 'user', content: 'a\u0000b' }] })), 400, 'must not contain NUL characters'],
      [await post(`${'['.repeat(70)}${']'.repeat(70)}`), 400, 'nested more than 64 levels'],
      [await post('model=x', 'application/x-www-form-urlencoded'), 415, 'Content-Type: application/json'],
      [await fetch(`${baseURL}/completions`, { method: 'POST', headers: { ...bearer(ALICE_KEY), 'content-type': 'application/json' }, body: '{}' }), 404, 'Cannot POST'],
    ] as [Response, number, string][]) {
      expect(res.status).toBe(status);
      const json = (await res.json()) as { error: { message: string; type: string } };
      expect(json.error.message).toContain(text);
      expect(typeof json.error.type).toBe('string');
    }

    const noKey = await fetch(`${baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(CHAT) });
    expect(noKey.status).toBe(401);
    expect(await noKey.json()).toMatchObject({ error: { type: 'authentication_error', code: 'invalid_api_key' } });

    const badTags = await sdk(ALICE_KEY, { 'x-asa-tags': 'no spaces allowed=here' }).chat.completions.create(CHAT).catch((e: unknown) => e);
    expect((badTags as APIError).status).toBe(400);
    expect((badTags as APIError).message).toContain('x-asa-tags');
  });

  it('the usage API filters by tags; a bad tags filter is a 400 naming it', async () => {
    fake.enqueue({}, {}, {});
    await sdk(ALICE_KEY, { 'x-asa-tags': 'team=filter-a,env=filter-prod' }).chat.completions.create(CHAT);
    await sdk(ALICE_KEY, { 'x-asa-tags': 'team=filter-a' }).chat.completions.create(CHAT);
    await sdk(ALICE_KEY, { 'x-asa-tags': 'team=filter_b' }).chat.completions.create(CHAT);
    await flush();
    const overall = async (tags: string, key = ADMIN_KEY) =>
      t.app.inject({ method: 'GET', url: `/api/v1/usage/overall?tags=${encodeURIComponent(tags)}`, headers: bearer(key) });
    expect((await overall('team=filter-a')).json().total_requests).toBe(2);
    expect((await overall('team=filter-a,env=filter-prod')).json().total_requests).toBe(1);
    // `_` is a LIKE wildcard: it must match only itself
    expect((await overall('team=filter_b')).json().total_requests).toBe(1);
    expect((await overall('team=filterxb')).json().total_requests).toBe(0);
    expect((await overall('team=filter-a', BOB_KEY)).json().total_requests).toBe(0);
    const user = await t.app.inject({ method: 'GET', url: '/api/v1/usage/user/alice?tags=env=filter-prod', headers: bearer(ALICE_KEY) });
    expect(user.json().total_requests).toBe(1);
    const bad = await overall('team');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toContain('tags');
  });

  it('GET /v1/models lists the exact routes and what the wildcard routes\' upstreams offer', async () => {
    const models = await sdk(ALICE_KEY).models.list();
    const ids = models.data.map((m) => m.id);
    const exact = ['slow-model', 'down-model', 'drip-model', 'odd-model', 'text-embedding-3-small'];
    expect(ids).toEqual(expect.arrayContaining([...exact, 'local/gpt-4o', 'gpt-4o-mini']));
    // the wildcard routes list only what they take: local/* the local upstream's models, gpt-* the default's gpt- ones
    expect(ids.filter((id) => !exact.includes(id) && !id.startsWith('local/') && !id.startsWith('gpt-'))).toEqual([]);
    expect(new Set(ids).size).toBe(ids.length);
  });
};

describe('OpenAI-compatible gateway (SQLite)', gatewaySuite('sqlite'));
describePostgres('OpenAI-compatible gateway', gatewaySuite('postgres'));
