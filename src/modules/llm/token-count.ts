import { getEncodingNameForModel, Tiktoken, TiktokenModel } from 'js-tiktoken/lite';
import cl100k from 'js-tiktoken/ranks/cl100k_base';
import o200k from 'js-tiktoken/ranks/o200k_base';
import type { CountJob } from './token-count.pool';

export type EncodingName = 'o200k_base' | 'cl100k_base';

/** Models on the o200k_base encoding (GPT-4o and later, the o-series), when tiktoken's own table does not know the name. */
const O200K_PREFIXES = ['gpt-4o', 'gpt-4.1', 'gpt-4.5', 'gpt-5', 'chatgpt-4o', 'o1', 'o3', 'o4'];

// OpenAI's documented chat overhead: every message costs 3 tokens beyond its content (4 with a
// name: we count the name's own tokens plus 1), and every reply is primed with 3 more.
export const TOKENS_PER_MESSAGE = 3;
export const TOKENS_PER_NAME = 1;
export const REPLY_PRIMING_TOKENS = 3;

/**
 * Local token counts with js-tiktoken (no framework: the worker threads of TokenCountPool load
 * only this). Unknown (non-OpenAI) models are counted with cl100k_base: an estimate, not their
 * real tokenizer.
 */
export class TokenCounter {
  private readonly encoders = new Map<EncodingName, Tiktoken>();

  encodingFor(model: string): EncodingName {
    try {
      const name = getEncodingNameForModel(model as TiktokenModel);
      if (name === 'o200k_base' || name === 'cl100k_base') return name;
    } catch {
      // not in tiktoken's table: decide by family below
    }
    const m = model.toLowerCase().replace(/^[a-z0-9_-]+\//, ''); // "openai/gpt-4o" -> "gpt-4o"
    return O200K_PREFIXES.some((p) => m.startsWith(p)) ? 'o200k_base' : 'cl100k_base';
  }

  /**
   * Tokens of `text`. js-tiktoken merges each pre-token (a run of letters, of spaces, of
   * punctuation) in time quadratic in its length: 25,000 letters without a space took 58 s. Runs of
   * LONG_RUN characters or more of one kind are therefore encoded in slices of SLICE_BYTES UTF-8
   * bytes: the same count for ordinary text, and for such runs one token more at most per slice,
   * instead of a count that never ends.
   */
  countText(text: string, model: string): number {
    if (!text) return 0;
    const enc = this.encoder(this.encodingFor(model));
    const encode = (part: string) => (part ? enc.encode(part, 'all').length : 0);
    let n = 0;
    let last = 0;
    for (const m of text.matchAll(LONG_RUNS)) {
      n += encode(text.slice(last, m.index));
      for (const slice of slices(m[0], SLICE_BYTES)) n += encode(slice);
      last = m.index + m[0].length;
    }
    return n + encode(text.slice(last));
  }

  /** Prompt tokens of a chat request: message contents, names, tool calls, tool definitions, plus the fixed overhead. */
  countChatPrompt(params: { model: string; messages?: readonly unknown[]; tools?: readonly unknown[] }): number {
    const messages = params.messages ?? [];
    let n = REPLY_PRIMING_TOKENS;
    for (const raw of messages) {
      const m = (raw ?? {}) as Record<string, unknown>;
      n += TOKENS_PER_MESSAGE;
      n += this.countText(typeof m.role === 'string' ? m.role : '', params.model);
      n += this.countText(contentText(m.content), params.model);
      if (typeof m.name === 'string') n += TOKENS_PER_NAME + this.countText(m.name, params.model);
      if (Array.isArray(m.tool_calls)) n += this.countText(JSON.stringify(m.tool_calls), params.model);
    }
    if (params.tools && params.tools.length > 0) n += this.countText(JSON.stringify(params.tools), params.model);
    return n;
  }

  /** Input tokens of an embeddings request (strings are encoded; token arrays are counted as they are). */
  countEmbeddingInput(input: unknown, model: string): number {
    if (typeof input === 'string') return this.countText(input, model);
    if (!Array.isArray(input)) return 0;
    if (input.every((x) => typeof x === 'number')) return input.length;
    return input.reduce<number>((sum, item) => sum + this.countEmbeddingInput(item, model), 0);
  }

  /**
   * Input tokens of a Responses API request: its instructions, then its input (a string, or
   * items: messages are counted as chat messages, other items by their JSON) and tools.
   */
  countResponsesInput(params: { model: string; instructions?: unknown; input: unknown; tools?: readonly unknown[] }): number {
    const instructions = typeof params.instructions === 'string' ? params.instructions : '';
    return this.countText(instructions, params.model) + this.countChatPrompt({ model: params.model, messages: responsesMessages(params.input), tools: params.tools });
  }

  private encoder(name: EncodingName): Tiktoken {
    let enc = this.encoders.get(name);
    if (!enc) {
      enc = new Tiktoken(name === 'o200k_base' ? o200k : cl100k);
      this.encoders.set(name, enc);
    }
    return enc;
  }
}

/** Characters of one kind (letters, whitespace, other non-digits) from which a run is encoded in slices; see `countText`. */
export const LONG_RUN = 64;
const LONG_RUNS = new RegExp(`[\\p{L}\\p{M}]{${LONG_RUN},}|\\s{${LONG_RUN},}|[^\\s\\p{L}\\p{M}\\p{N}]{${LONG_RUN},}`, 'gu');

/**
 * UTF-8 bytes per slice of a long run. BPE works on bytes, so its cost follows a slice's bytes, not
 * its characters: a slice of 64 CJK characters (192 bytes) cost nine times one of 64 letters.
 */
const SLICE_BYTES = 48;

/** `text` in pieces of at most `maxBytes` UTF-8 bytes (at least one character), never splitting a surrogate pair. */
function* slices(text: string, maxBytes: number): Generator<string> {
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < text.length; ) {
    const code = text.codePointAt(i)!;
    const units = code > 0xffff ? 2 : 1;
    const size = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (bytes + size > maxBytes && i > start) {
      yield text.slice(start, i);
      start = i;
      bytes = 0;
    }
    bytes += size;
    i += units;
  }
  if (start < text.length) yield text.slice(start);
}

/** What a worker thread runs for one count. */
export function countJob(counter: TokenCounter, job: CountJob): number {
  if (job.kind === 'chat') return counter.countChatPrompt(job);
  if (job.kind === 'text') return counter.countText(job.text, job.model);
  if (job.kind === 'responses') return counter.countResponsesInput(job);
  return counter.countEmbeddingInput(job.input, job.model);
}

/** A Responses API `input` as chat messages: a string is one user message; an item without `content` (a tool call, its output) is counted by its JSON. */
export function responsesMessages(input: unknown): unknown[] {
  if (typeof input === 'string') return [{ role: 'user', content: input }];
  if (!Array.isArray(input)) return [];
  return input.map((item) => (typeof item === 'object' && item !== null && 'content' in item ? item : { role: 'user', content: JSON.stringify(item) }));
}

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part) => {
      const p = (part ?? {}) as Record<string, unknown>;
      return typeof p.text === 'string' ? p.text : typeof p.refusal === 'string' ? p.refusal : '';
    })
    .join('');
}
