import { Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { COUNT_DEADLINE_MS, CountDeadlineError, TokenCountPool, type CountJob } from './token-count.pool';
import { countJob, REPLY_PRIMING_TOKENS, responsesMessages, TOKENS_PER_MESSAGE, TOKENS_PER_NAME, TokenCounter } from './token-count';

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
export class TokenEstimator extends TokenCounter implements OnModuleDestroy {
  private readonly logger = new Logger(TokenEstimator.name);
  /** How long one count in a worker may run (COUNT_DEADLINE_MS; a setting for tests). */
  deadlineMs = COUNT_DEADLINE_MS;
  private pool: TokenCountPool | null = null;
  private workerFailed = false;
  private warm = false;

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

  /** An upper bound of `countResponsesInput`, without tokenizing (see `chatPromptBound`). */
  responsesInputBound(params: { instructions?: unknown; input: unknown; tools?: readonly unknown[] }): number {
    return textBytes(params.instructions) + this.chatPromptBound({ messages: responsesMessages(params.input), tools: params.tools });
  }

  /** An upper bound of the count `job` asks for, known at once (no tokenizing): what admission reserves. */
  bound(job: CountJob): number {
    switch (job.kind) {
      case 'chat':
        return this.chatPromptBound(job);
      case 'text':
        return textBytes(job.text);
      case 'embedding':
        return this.embeddingInputBound(job.input);
      case 'responses':
        return this.responsesInputBound(job);
    }
  }

  /** The exact count `job` asks for, in a worker thread. With `signal`, a count not yet started is dropped when it aborts. */
  countAsync(job: CountJob, signal?: AbortSignal): Promise<number> {
    return this.run(job, signal);
  }

  /**
   * Starts the worker thread and loads both encodings there (once), so the first counts calls
   * need do not wait for it. Called by the first LLM call rather than at boot: a service that
   * makes no calls never starts a thread.
   */
  warmUp(): void {
    if (this.warm) return;
    this.warm = true;
    // Straight to the pool: a warm-up the workers could not run (the service stopped first) is not
    // worth loading the tokenizer on the event loop for, as a count a record needs is.
    this.pool ??= new TokenCountPool(() => this.deadlineMs);
    for (const model of ['gpt-4o', 'gpt-4']) this.pool.run({ kind: 'text', model, text: 'warm up' }).catch(() => undefined);
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
    this.pool ??= new TokenCountPool(() => this.deadlineMs);
    return this.pool.run(job, signal).catch((err: unknown) => {
      if (signal?.aborted) throw err;
      const bound = this.bound(job);
      if (err instanceof CountDeadlineError) {
        // Pathological or huge text: its upper bound (one token per UTF-8 byte) is what is recorded, marked estimated as every local count is.
        this.logger.warn(`a token count took over ${err.deadlineMs} ms (${bound} bytes of ${job.model} prompt); its upper bound, ${bound} tokens, is used instead`);
        return bound;
      }
      // The count is billed: a worker that cannot run (it failed to start, or the service is
      // stopping) must not lose it. Counted on the event loop when that is quick, else the bound.
      if (!this.workerFailed) this.logger.warn(`token counting in a worker thread failed (${(err as Error).message}): counting on the event loop, or using the upper bound for prompts over ${EVENT_LOOP_COUNT_MAX_BYTES} bytes`);
      this.workerFailed = true;
      return bound <= EVENT_LOOP_COUNT_MAX_BYTES ? countJob(this, job) : bound;
    });
  }

}

/**
 * Largest prompt (in UTF-8 bytes, its upper bound) counted on the event loop when no worker can
 * (the service is stopping, or the worker failed): a few milliseconds of ordinary text, under 100 ms
 * of the slowest runs there are. Larger ones are recorded at their bound rather than hold every
 * request (and shutdown) while they are counted.
 */
const EVENT_LOOP_COUNT_MAX_BYTES = 8_192;

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

