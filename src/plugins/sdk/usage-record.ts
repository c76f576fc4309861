/**
 * One LLM call, as every sink receives it. Exactly one record is produced per call,
 * whether it succeeded or failed; `id` is unique and makes every write idempotent.
 */
export interface UsageRecord {
  /** UUID of this record; sinks must treat a second write of the same id as a no-op. */
  readonly id: string;
  /** When the call started, as epoch milliseconds (UTC). */
  readonly createdAtMs: number;
  readonly taskId: string | null;
  readonly userId: string | null;
  /** W3C trace id of the span the call ran in, when tracing is on. */
  readonly traceId: string | null;
  /** Provider id as used for pricing, e.g. `openai`. */
  readonly provider: string;
  readonly operation: UsageOperation;
  /** The model the caller asked for; the key of `by_model` and of the `model` metric label. */
  readonly requestedModel: string;
  /** The model the provider says answered (often a dated snapshot); null when the call failed before a response. */
  readonly responseModel: string | null;
  /** Prompt tokens, including the cached ones (OpenAI's `prompt_tokens`). */
  readonly inputTokens: number;
  /** Part of `inputTokens` read from the provider's prompt cache. */
  readonly cachedInputTokens: number;
  /** Part of `inputTokens` written to the provider's prompt cache. */
  readonly cacheWriteTokens: number;
  /** Completion tokens, including reasoning tokens (OpenAI's `completion_tokens`). */
  readonly outputTokens: number;
  /** Part of `outputTokens` spent on hidden reasoning. */
  readonly reasoningTokens: number;
  readonly totalTokens: number;
  /** Exact cost in nano-dollars (1e-9 USD); null when the model has no known price (see `unpriced`). */
  readonly costNanos: number | null;
  /** True when no price was found for the model: cost is unknown, never silently 0. */
  readonly unpriced: boolean;
  /** Where the price came from, e.g. `genai-prices@0.1.8:openai/gpt-4o` or `override:gpt-custom`. */
  readonly priceSource: string | null;
  readonly latencyMs: number;
  /** For streamed calls, milliseconds until the first content chunk. */
  readonly timeToFirstTokenMs: number | null;
  readonly streamed: boolean;
  readonly status: UsageStatus;
  /** Error class for failed calls: `http_429`, `timeout`, `aborted`, `connection`, ... */
  readonly errorType: string | null;
  /** True when token counts were computed locally because the provider reported none. */
  readonly estimated: boolean;
  /**
   * Caller-supplied labels (gateway `x-asa-tags`): a few bounded `key=value` pairs, stored and
   * filterable in the usage API, never metric labels. Absent when the call has none.
   */
  readonly tags?: Readonly<Record<string, string>> | null;
}

/** The API a call used: Chat Completions, Embeddings, or the Responses API (gateway `POST /v1/responses`). */
/** The API the call went through; `responses` (the Responses API, through the gateway) since 1.1. */
export type UsageOperation = 'chat' | 'embeddings' | 'responses';
export type UsageStatus = 'success' | 'error';

export const NANOS_PER_USD = 1_000_000_000;
