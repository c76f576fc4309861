import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { getEncodingNameForModel, Tiktoken, TiktokenModel } from 'js-tiktoken/lite';
import cl100k from 'js-tiktoken/ranks/cl100k_base';
import o200k from 'js-tiktoken/ranks/o200k_base';
import { TokenCountPool, type CountJob } from './token-count.pool';

type EncodingName = 'o200k_base' | 'cl100k_base';

/** Models on the o200k_base encoding (GPT-4o and later, the o-series), when tiktoken's own table does not know the name. */
const O200K_PREFIXES = ['gpt-4o', 'gpt-4.1', 'gpt-4.5', 'gpt-5', 'chatgpt-4o', 'o1', 'o3', 'o4'];

// OpenAI's documented chat overhead: every message costs 3 tokens beyond its content (4 with a
// name: we count the name's own tokens plus 1), and every reply is primed with 3 more.
const TOKENS_PER_MESSAGE = 3;
const TOKENS_PER_NAME = 1;
const REPLY_PRIMING_TOKENS = 3;

/**
 * Local token counts with js-tiktoken, for calls whose provider reported no usage (then the
 * record says `estimated: true`), and upper bounds for the worst-case cost checked before a call.
 * Unknown (non-OpenAI) models are counted with cl100k_base: an estimate, not their real tokenizer.
 *
 * Counting costs about 0.3 µs per character (25 ms for the agent's 80,000-character prompts), so
 * the LLM call path never counts on the event loop: admission uses the `*Bound` methods (the UTF-8
 * byte length, a few microseconds), and the exact counts it records come from `count*Async`, run
 * in a worker thread. The synchronous `count*` methods are the counter itself (used by the worker).
 */
@Injectable()
export class TokenEstimator implements OnModuleDestroy {
  private readonly encoders = new Map<EncodingName, Tiktoken>();
  private readonly logger = new Logger(TokenEstimator.name);
  private pool: TokenCountPool | null = null;
  private workerFailed = false;

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

  countText(text: string, model: string): number {
    if (!text) return 0;
    return this.encoder(this.encodingFor(model)).encode(text, 'all').length;
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
   * An upper bound of `countChatPrompt`, without tokenizing. o200k_base and cl100k_base are
   * byte-level BPE: every token stands for at least one byte of the UTF-8 text (special tokens
   * such as `<|endoftext|>` for more), so a text never has more tokens than UTF-8 bytes.
   */
  chatPromptBound(params: { messages?: readonly unknown[]; tools?: readonly unknown[] }): number {
    const messages = params.messages ?? [];
    let n = REPLY_PRIMING_TOKENS;
    for (const raw of messages) {
      const m = (raw ?? {}) as Record<string, unknown>;
      n += TOKENS_PER_MESSAGE + textBytes(m.role) + contentBytes(m.content);
      if (typeof m.name === 'string') n += TOKENS_PER_NAME + textBytes(m.name);
      if (Array.isArray(m.tool_calls)) n += textBytes(JSON.stringify(m.tool_calls));
    }
    if (params.tools && params.tools.length > 0) n += textBytes(JSON.stringify(params.tools));
    return n;
  }

  /** An upper bound of `countEmbeddingInput`, without tokenizing (see `chatPromptBound`). */
  embeddingInputBound(input: unknown): number {
    if (typeof input === 'string') return textBytes(input);
    if (!Array.isArray(input)) return 0;
    if (input.every((x) => typeof x === 'number')) return input.length;
    return input.reduce<number>((sum, item) => sum + this.embeddingInputBound(item), 0);
  }

  /** `countChatPrompt` in a worker thread. With `signal`, a count not yet started is dropped when it aborts. */
  countChatPromptAsync(params: { model: string; messages?: readonly unknown[]; tools?: readonly unknown[] }, signal?: AbortSignal): Promise<number> {
    return this.run({ kind: 'chat', model: params.model, messages: params.messages, tools: params.tools }, signal);
  }

  /** `countText` in a worker thread. */
  countTextAsync(text: string, model: string): Promise<number> {
    if (!text) return Promise.resolve(0);
    return this.run({ kind: 'text', model, text });
  }

  /** `countEmbeddingInput` in a worker thread. */
  countEmbeddingInputAsync(input: unknown, model: string, signal?: AbortSignal): Promise<number> {
    return this.run({ kind: 'embedding', model, input }, signal);
  }

  async onModuleDestroy(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.close();
  }

  /** Waiting counts not yet taken by a worker thread. */
  get countsQueued(): number {
    return this.pool?.queued ?? 0;
  }

  private run(job: CountJob, signal?: AbortSignal): Promise<number> {
    this.pool ??= new TokenCountPool();
    return this.pool.run(job, signal).catch((err: unknown) => {
      if (signal?.aborted) throw err;
      // The count is billed: a worker that cannot run (it failed to start) must not lose it.
      if (!this.workerFailed) this.logger.warn(`token counting in a worker thread failed, counting on the event loop instead: ${(err as Error).message}`);
      this.workerFailed = true;
      return countJob(this, job);
    });
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

/** What the worker thread runs for one count. */
export function countJob(estimator: TokenEstimator, job: CountJob): number {
  if (job.kind === 'chat') return estimator.countChatPrompt(job);
  if (job.kind === 'text') return estimator.countText(job.text, job.model);
  return estimator.countEmbeddingInput(job.input, job.model);
}

function textBytes(text: unknown): number {
  return typeof text === 'string' ? Buffer.byteLength(text, 'utf8') : 0;
}

/** UTF-8 bytes of the text `contentText` would join (the same parts, without joining them). */
function contentBytes(content: unknown): number {
  if (typeof content === 'string') return textBytes(content);
  if (!Array.isArray(content)) return 0;
  let n = 0;
  for (const part of content) {
    const p = (part ?? {}) as Record<string, unknown>;
    n += typeof p.text === 'string' ? textBytes(p.text) : textBytes(p.refusal);
  }
  return n;
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
