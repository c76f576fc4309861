import OpenAI, { APIConnectionTimeoutError, APIError, RateLimitError, InternalServerError } from 'openai';
import { SIMULATOR_FINGERPRINT, SIMULATOR_MAX_BODY_BYTES, simulatedTokenCount } from '../src/simulator/openai-compatible-server';

const MIB = 1_048_576;
import { FakeOpenAi } from './fixtures/fake-openai';

// The simulator is exercised through the official openai SDK, exactly as the service talks to a provider.
describe('OpenAI-compatible simulator', () => {
  let fake: FakeOpenAi;
  let client: OpenAI;

  beforeAll(async () => {
    fake = await FakeOpenAi.start();
    client = new OpenAI({ apiKey: 'test-key', baseURL: fake.baseUrl, maxRetries: 0 });
  });
  afterAll(() => fake.close());
  afterEach(() => {
    fake.expectAllRepliesUsed();
    fake.reset();
  });

  it('listens on 127.0.0.1 with an ephemeral port', () => {
    expect(fake.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    expect(fake.baseUrl).not.toMatch(/:0\/v1$/);
  });

  it('answers a chat completion with scripted content and usage details', async () => {
    fake.enqueue({
      content: 'Hello there',
      model: 'gpt-4o-2024-08-06',
      usage: { prompt_tokens: 1200, completion_tokens: 300, cached_tokens: 1024, reasoning_tokens: 100, cache_write_tokens: 50 },
    });
    const { data, response } = await client.chat.completions
      .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 50 })
      .withResponse();
    expect(response.headers.get('x-simulator')).toBe('asa-backend');
    expect(data.system_fingerprint).toBe(SIMULATOR_FINGERPRINT);
    expect(data.model).toBe('gpt-4o-2024-08-06');
    expect(data.choices[0].message).toMatchObject({ role: 'assistant', content: 'Hello there' });
    expect(data.choices[0].finish_reason).toBe('stop');
    expect(data.usage).toMatchObject({
      prompt_tokens: 1200,
      completion_tokens: 300,
      total_tokens: 1500,
      prompt_tokens_details: { cached_tokens: 1024, cache_write_tokens: 50 },
      completion_tokens_details: { reasoning_tokens: 100 },
    });
    const req = fake.lastRequest();
    expect(req.path).toBe('/v1/chat/completions');
    expect(req.body).toMatchObject({ model: 'gpt-4o', max_tokens: 50, messages: [{ role: 'user', content: 'Hi' }] });
    expect(req.headers.authorization).toBe('Bearer test-key');
  });

  it('computes usage itself when none is scripted, and sends none when usage is null', async () => {
    fake.enqueue({ content: 'one two three' }, { content: 'x', usage: null });
    const a = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'alpha beta' }] });
    // 2 prompt words + 3 per message of overhead; 3 completion words.
    expect(a.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
    expect(a.model).toBe('m');
    const b = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'alpha' }] });
    expect(b.usage).toBeUndefined();
  });

  it('streams chunks that reassemble the content, with a final usage chunk when include_usage is set', async () => {
    fake.enqueue({ content: 'The quick brown fox', usage: { prompt_tokens: 40, completion_tokens: 4, cached_tokens: 10, reasoning_tokens: 1 } });
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'go' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    const chunks = [];
    for await (const c of stream) {
      chunks.push(c);
      text += c.choices[0]?.delta?.content ?? '';
    }
    expect(text).toBe('The quick brown fox');
    expect(chunks.every((c) => c.system_fingerprint === SIMULATOR_FINGERPRINT)).toBe(true);
    const last = chunks[chunks.length - 1];
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({
      prompt_tokens: 40,
      completion_tokens: 4,
      total_tokens: 44,
      prompt_tokens_details: { cached_tokens: 10 },
      completion_tokens_details: { reasoning_tokens: 1 },
    });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(chunks[chunks.length - 2].choices[0].finish_reason).toBe('stop');
    expect(fake.lastRequest().body.stream_options).toEqual({ include_usage: true });
  });

  it('streams without a usage chunk when include_usage is not asked for, or usage is null', async () => {
    fake.enqueue({ content: 'a b' }, { content: 'c d', usage: null });
    for (const opts of [{}, { stream_options: { include_usage: true } }]) {
      const stream = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'go' }], stream: true, ...opts });
      const chunks = [];
      for await (const c of stream) chunks.push(c);
      expect(chunks.some((c) => c.usage)).toBe(false);
      expect(chunks.every((c) => c.choices.length === 1)).toBe(true);
    }
  });

  it('returns embeddings as floats or base64 (the SDK default), with usage', async () => {
    const decoded = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['hello world', 'hello world', 'other'] });
    expect(fake.lastRequest().body.encoding_format).toBe('base64');
    expect(decoded.data).toHaveLength(3);
    expect(decoded.data[0].embedding).toHaveLength(8);
    expect(decoded.data[0].embedding).toEqual(decoded.data[1].embedding);
    expect(decoded.data[0].embedding).not.toEqual(decoded.data[2].embedding);
    expect(decoded.usage).toEqual({ prompt_tokens: 5, total_tokens: 5 });
    fake.enqueue({ usage: { prompt_tokens: 77, completion_tokens: 0 } });
    const floats = await client.embeddings.create({ model: 'e', input: 'x', encoding_format: 'float', dimensions: 4 });
    expect(floats.data[0].embedding).toHaveLength(4);
    const norm = Math.sqrt(floats.data[0].embedding.reduce((s, v) => s + v * v, 0));
    expect(norm).toBeCloseTo(1, 5);
    expect(floats.usage.prompt_tokens).toBe(77);
  });

  it('rejects embeddings without a usable input with a 400 naming input, as OpenAI does', async () => {
    for (const body of [{ model: 'e' }, { model: 'e', input: '' }, { model: 'e', input: [] }, { model: 'e', input: [{}] }, { model: 'e', input: null }]) {
      const err = await client.embeddings.create(body as never).catch((e: unknown) => e);
      expect(err, JSON.stringify(body)).toBeInstanceOf(APIError);
      expect((err as APIError).status).toBe(400);
      expect((err as APIError).message).toContain("'input' is required");
    }
    const tokens = await client.embeddings.create({ model: 'e', input: [[1, 2, 3]], encoding_format: 'float', dimensions: 2 });
    expect(tokens.data).toHaveLength(1);
  });

  it('lists models, including ones requested before', async () => {
    await client.chat.completions.create({ model: 'my-local-model', messages: [{ role: 'user', content: 'x' }] });
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toContain('gpt-4o');
    expect(ids).toContain('my-local-model');
  });

  it('answers scripted HTTP errors in OpenAI’s error shape', async () => {
    fake.enqueue({ error: { status: 429, message: 'slow down' } }, { error: { status: 500 } });
    const rate = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
    expect(rate).toBeInstanceOf(RateLimitError);
    expect(rate.status).toBe(429);
    expect(rate.error).toMatchObject({ message: 'slow down', type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    const server = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }).catch((e) => e);
    expect(server).toBeInstanceOf(InternalServerError);
  });

  it('rejects a request without a model with a 400', async () => {
    const res = await fetch(`${fake.baseUrl}/chat/completions`, { method: 'POST', body: '{"messages":[]}', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/model/);
    const bad = await fetch(`${fake.baseUrl}/chat/completions`, { method: 'POST', body: '{nope' });
    expect(bad.status).toBe(400);
    const missing = await fetch(`${fake.baseUrl}/nothing`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-simulator')).toBe('asa-backend');
  });

  it('rejects chat messages that are not a non-empty array of objects with a string role with a 400 naming them, as OpenAI does', async () => {
    for (const [messages, param] of [
      [[null], 'messages[0]'],
      [[{ role: 'user', content: 'ok' }, 'hi'], 'messages[1]'],
      [[{ content: 'no role' }], 'messages[0]'],
      [[{ role: 7, content: 'x' }], 'messages[0]'],
      [[[]], 'messages[0]'],
      [[], 'messages'],
      ['hi', 'messages'],
      [undefined, 'messages'],
    ] as const) {
      const err = await client.chat.completions.create({ model: 'm', messages } as never).catch((e: unknown) => e);
      expect(err, JSON.stringify(messages)).toBeInstanceOf(APIError);
      expect((err as APIError).status).toBe(400);
      expect((err as APIError).param).toBe(param);
      expect((err as APIError).type).toBe('invalid_request_error');
    }
    const streamed = await client.chat.completions.create({ model: 'm', messages: [null], stream: true } as never).catch((e: unknown) => e);
    expect((streamed as APIError).status).toBe(400);
  });

  it('rejects a Responses call without usable input with a 400 naming input', async () => {
    for (const [input, param] of [[undefined, 'input'], [null, 'input'], ['', 'input'], [[], 'input'], [42, 'input'], [[null], 'input[0]'], [['text'], 'input[0]']] as const) {
      const err = await client.responses.create({ model: 'm', input } as never).catch((e: unknown) => e);
      expect(err, JSON.stringify(input)).toBeInstanceOf(APIError);
      expect((err as APIError).status).toBe(400);
      expect((err as APIError).param).toBe(param);
    }
    fake.enqueue({ content: 'fine' }, { content: 'also fine' });
    expect((await client.responses.create({ model: 'm', input: 'hi' })).output_text).toBe('fine');
    expect((await client.responses.create({ model: 'm', input: [{ role: 'user', content: 'hi' }] })).output_text).toBe('also fine');
  });

  it(`takes bodies up to ${SIMULATOR_MAX_BODY_BYTES / MIB} MiB (past the gateway's default 20 MiB) and answers a larger one 413 rather than dropping the connection`, async () => {
    fake.enqueue({ content: 'big one read' });
    const big = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'a'.repeat(21 * MIB) }] });
    expect(big.choices[0].message.content).toBe('big one read');
    const tooBig = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'a'.repeat(SIMULATOR_MAX_BODY_BYTES) }] }).catch((e: unknown) => e);
    expect(tooBig).toBeInstanceOf(APIError);
    expect((tooBig as APIError).status).toBe(413);
    expect((tooBig as APIError).message).toContain(`limit of ${SIMULATOR_MAX_BODY_BYTES / MIB} MiB`);
  });

  it('delays answers (the SDK times out) and can break a stream midway', async () => {
    fake.enqueue({ delayMs: 2_000 });
    const err = await client.chat.completions
      .create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }, { timeout: 100 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(APIConnectionTimeoutError);

    fake.enqueue({ content: 'one two three four', breakStreamAfterChunks: 2 });
    const stream = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true });
    let text = '';
    const broken = await (async () => {
      for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
    })().catch((e) => e);
    expect(broken).toBeInstanceOf(Error);
    expect(text).toBe('one two');
  });

  it('counts simulated tokens by words and punctuation', () => {
    expect(simulatedTokenCount('Hello, world!')).toBe(4);
    expect(simulatedTokenCount('')).toBe(0);
  });
});
