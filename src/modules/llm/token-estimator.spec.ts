import { Tiktoken } from 'js-tiktoken/lite';
import o200k from 'js-tiktoken/ranks/o200k_base';
import { LONG_RUN } from './token-count';
import { TokenEstimator } from './token-estimator';

/** A small seeded generator (mulberry32): the same adversarial strings on every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Strings built to give a byte-level BPE as few bytes per token as possible. */
function adversarialTexts(): string[] {
  const rnd = seeded(14);
  const pick = (alphabet: string[], n: number) => Array.from({ length: n }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('');
  const codePoints = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => String.fromCodePoint(from + i));
  const alphabets: string[][] = [
    codePoints(0, 32), // control characters: no merges
    codePoints(32, 127), // printable ASCII punctuation and letters at random
    codePoints(0x80, 0x800), // two-byte UTF-8
    codePoints(0x3400, 0x4dbf), // rare CJK: three bytes, often split
    codePoints(0x1f300, 0x1f64f), // emoji: four bytes, surrogate pairs in JavaScript
    codePoints(0x300, 0x36f), // combining marks
    ['\ud800', '\udfff', 'a', '\udbff'], // lone surrogates (encoded as U+FFFD)
    ['<|endoftext|>', '<|fim_prefix|>', '<|im_start|>', ' ', '\n'], // text that looks like special tokens
    [' ', '\t', '\n', '\r', '\u00a0', '\u3000'], // whitespace runs
    codePoints(0x10000, 0x10fff), // astral planes
  ];
  const texts: string[] = [];
  for (const alphabet of alphabets) for (const n of [1, 2, 7, 64, 500]) texts.push(pick(alphabet, n));
  // Mixtures of every alphabet.
  for (let i = 0; i < 40; i++) texts.push(pick(alphabets.flat(), 1 + Math.floor(rnd() * 400)));
  return texts;
}

describe('TokenEstimator', () => {
  const est = new TokenEstimator();

  it('picks the model family’s encoding, cl100k_base for models it does not know', () => {
    expect(est.encodingFor('gpt-4o')).toBe('o200k_base');
    expect(est.encodingFor('gpt-4o-mini-2024-07-18')).toBe('o200k_base');
    expect(est.encodingFor('o3-mini')).toBe('o200k_base');
    expect(est.encodingFor('gpt-5.1-codex')).toBe('o200k_base'); // not in tiktoken's table: by family
    expect(est.encodingFor('openai/o4-mini-high')).toBe('o200k_base');
    expect(est.encodingFor('gpt-4')).toBe('cl100k_base');
    expect(est.encodingFor('gpt-3.5-turbo')).toBe('cl100k_base');
    expect(est.encodingFor('text-embedding-3-small')).toBe('cl100k_base');
    expect(est.encodingFor('llama3.1:8b')).toBe('cl100k_base');
  });

  it('counts text, including text that looks like special tokens, without throwing', () => {
    expect(est.countText('', 'gpt-4o')).toBe(0);
    expect(est.countText('Hello there friend', 'gpt-4o')).toBe(3);
    expect(est.countText('<|endoftext|>', 'gpt-4o')).toBe(1);
  });

  it('counts a chat prompt with the per-message overhead', () => {
    // 3 priming + [3 + "system" 1 + "You are terse." 4] + [3 + "user" 1 + "hi" 1] = 16
    expect(
      est.countChatPrompt({
        model: 'gpt-4o',
        messages: [
          { role: 'system', content: 'You are terse.' },
          { role: 'user', content: 'hi' },
        ],
      }),
    ).toBe(16);
    // content parts are counted by their text: same as the plain string
    expect(est.countChatPrompt({ model: 'gpt-4o', messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] })).toBe(8);
    expect(est.countChatPrompt({ model: 'gpt-4o', messages: [] })).toBe(3);
  });

  it('counts embedding inputs: strings, lists of strings, token arrays', () => {
    expect(est.countEmbeddingInput('alpha', 'text-embedding-3-small')).toBe(1);
    expect(est.countEmbeddingInput(['alpha', 'Hello there friend'], 'text-embedding-3-small')).toBe(4);
    expect(est.countEmbeddingInput([1, 2, 3], 'text-embedding-3-small')).toBe(3);
    expect(est.countEmbeddingInput([[1, 2], [3]], 'text-embedding-3-small')).toBe(3);
  });

  describe('upper bounds (what admission reserves)', () => {
    const texts = adversarialTexts();
    const models = ['gpt-4o', 'gpt-4']; // o200k_base and cl100k_base

    it('never fall below the real count, for text built to have as many tokens per byte as possible', () => {
      let tightest = 0;
      for (const model of models) {
        for (const text of texts) {
          const count = est.countText(text, model);
          const bound = est.embeddingInputBound(text);
          expect(bound, `${model}: ${JSON.stringify(text.slice(0, 40))}`).toBeGreaterThanOrEqual(count);
          tightest = Math.max(tightest, count / bound);
        }
      }
      // Some inputs come close to one token per byte: no smaller bytes-per-token ratio would be safe.
      expect(tightest).toBeGreaterThan(0.9);
    });

    it('bound whole chat prompts: roles, names, content parts, tool calls and tools', () => {
      const rnd = seeded(7);
      const at = () => texts[Math.floor(rnd() * texts.length)];
      for (const model of models) {
        for (let i = 0; i < 30; i++) {
          const params = {
            model,
            messages: [
              { role: 'system', content: at() },
              { role: 'user', name: at().slice(0, 20), content: [{ type: 'text', text: at() }, { type: 'refusal', refusal: at() }] },
              { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: JSON.stringify({ q: at() }) } }] },
              { role: 'tool', content: at() },
            ],
            tools: [{ type: 'function', function: { name: 'f', description: at(), parameters: { type: 'object' } } }],
          };
          expect(est.chatPromptBound(params)).toBeGreaterThanOrEqual(est.countChatPrompt(params));
        }
      }
      expect(est.chatPromptBound({ messages: [] })).toBe(est.countChatPrompt({ model: 'gpt-4o', messages: [] }));
    });

    it('bound Responses API inputs: instructions, a string, message items, other items and tools', () => {
      const rnd = seeded(11);
      const at = () => texts[Math.floor(rnd() * texts.length)];
      for (const model of models) {
        for (let i = 0; i < 20; i++) {
          const tools = [{ type: 'function', name: 'f', description: at(), parameters: { type: 'object' } }];
          const items = { model, instructions: at(), tools, input: [{ role: 'user', content: [{ type: 'input_text', text: at() }] }, { type: 'function_call_output', call_id: 'c1', output: at() }] };
          const plain = { model, instructions: at(), input: at() };
          for (const params of [items, plain]) {
            expect(est.bound({ kind: 'responses', ...params })).toBe(est.responsesInputBound(params));
            expect(est.responsesInputBound(params)).toBeGreaterThanOrEqual(est.countResponsesInput(params));
          }
        }
      }
    });

    it('bound embedding inputs of every shape', () => {
      expect(est.embeddingInputBound([1, 2, 3])).toBe(3);
      expect(est.embeddingInputBound([[1, 2], [3]])).toBe(3);
      expect(est.embeddingInputBound(texts)).toBeGreaterThanOrEqual(est.countEmbeddingInput(texts, 'text-embedding-3-small'));
    });
  });

  it('counts long runs of one kind of character in slices: ordinary text exactly as tiktoken does, a 100,000-letter run without its quadratic cost', () => {
    const enc = (text: string) => new Tiktoken(o200k).encode(text, 'all').length;
    const prose = 'The quick brown fox jumps over the lazy dog; Donaudampfschifffahrtsgesellschaft. '.repeat(300);
    expect(est.countText(prose, 'gpt-4o')).toBe(enc(prose));
    // 2,083 slices of 48 letters (6 tokens each) and one of 16 (2 tokens); unsliced this took minutes.
    expect(est.countText('x'.repeat(100_000), 'gpt-4o')).toBe(2_083 * 6 + 2);
    // A run in the middle of ordinary text: the text around it is encoded as it is.
    const mixed = `before the run ${'-'.repeat(48 * 3)} after the run`;
    expect(LONG_RUN).toBeLessThan(48 * 3);
    expect(est.countText(mixed, 'gpt-4o')).toBe(enc('before the run ') + 3 * enc('-'.repeat(48)) + enc(' after the run'));
    // Slices are cut by UTF-8 bytes, between characters: 16 three-byte characters, or 12 four-byte ones (surrogate pairs kept whole).
    expect(est.countText('漢'.repeat(160), 'gpt-4o')).toBe(10 * enc('漢'.repeat(16)));
    expect(est.countText('\u{1F600}'.repeat(120), 'gpt-4o')).toBe(10 * enc('\u{1F600}'.repeat(12)));
    for (const run of [' '.repeat(10_000), '\u{1F600}-'.repeat(5_000)]) expect(est.countText(run, 'gpt-4o')).toBeLessThanOrEqual(est.embeddingInputBound(run));
  });

  describe('counts in a worker thread (what is recorded)', () => {
    const counter = new TokenEstimator();
    afterAll(() => counter.onModuleDestroy());

    it('give exactly the event loop’s counts', async () => {
      const prompt = { model: 'gpt-4o', messages: [{ role: 'user', content: 'The quick brown fox. '.repeat(500) }, { role: 'user', content: adversarialTexts().join('') }] };
      expect(await counter.countChatPromptAsync(prompt)).toBe(est.countChatPrompt(prompt));
      expect(await counter.countTextAsync('Hello there friend', 'gpt-4o')).toBe(3);
      expect(await counter.countTextAsync('', 'gpt-4o')).toBe(0);
      expect(await counter.countEmbeddingInputAsync(['alpha', 'Hello there friend'], 'text-embedding-3-small')).toBe(4);
    });

    it('stop a count that runs past its deadline and give the upper bound instead; the next count gets a fresh worker', async () => {
      const quick = new TokenEstimator();
      try {
        expect(await quick.countTextAsync('warm up', 'gpt-4o')).toBe(2); // the worker is started
        quick.deadlineMs = 20;
        const huge = 'lorem ipsum dolor sit amet '.repeat(200_000); // 5.4 MB: far more than 20 ms to count
        expect(await quick.countTextAsync(huge, 'gpt-4o')).toBe(Buffer.byteLength(huge));
        quick.deadlineMs = 5_000;
        expect(await quick.countTextAsync('Hello there friend', 'gpt-4o')).toBe(3);
      } finally {
        await quick.onModuleDestroy();
      }
    });

    it('once the workers are gone (shutdown), count a small prompt on the event loop and give a large one its bound', async () => {
      const closing = new TokenEstimator();
      closing.warmUp();
      const small = { model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello there friend' }] };
      const large = { model: 'gpt-4o', messages: [{ role: 'user', content: 'lorem ipsum '.repeat(20_000) }] };
      const counts = [closing.countChatPromptAsync(large), closing.countChatPromptAsync(small), closing.countChatPromptAsync(large)];
      await closing.onModuleDestroy(); // rejects what no worker has finished
      const [a, b, c] = await Promise.all(counts);
      expect(b).toBe(est.countChatPrompt(small));
      for (const n of [a, c]) expect([est.countChatPrompt(large), est.chatPromptBound(large)]).toContain(n);
      expect(c).toBe(est.chatPromptBound(large)); // it waited behind the first: never counted
    });

    it('drop a count no longer needed before a worker takes it', async () => {
      const long = { model: 'gpt-4o', messages: [{ role: 'user', content: 'lorem ipsum dolor sit amet '.repeat(4000) }] };
      // Enough counts that some wait for a worker; abort them all at once.
      const abort = new AbortController();
      const counts = Array.from({ length: 8 }, () => counter.countChatPromptAsync(long, abort.signal));
      const waiting = counter.countsQueued;
      expect(waiting).toBeGreaterThan(0);
      abort.abort();
      const settled = await Promise.allSettled(counts);
      const dropped = settled.filter((r) => r.status === 'rejected');
      expect(dropped).toHaveLength(waiting);
      for (const r of dropped) expect((r as PromiseRejectedResult).reason).toMatchObject({ name: 'AbortError' });
      for (const r of settled) if (r.status === 'fulfilled') expect(r.value).toBe(est.countChatPrompt(long));
      expect(counter.countsQueued).toBe(0);
      // Already aborted: never queued.
      await expect(counter.countChatPromptAsync(long, abort.signal)).rejects.toMatchObject({ name: 'AbortError' });
    });
  });
});
