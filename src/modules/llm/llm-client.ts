import { Logger } from '@nestjs/common';
import { context, isSpanContextValid, Span, SpanKind, SpanStatusCode, trace, Tracer } from '@opentelemetry/api';
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionCreateParamsStreaming,
} from 'openai/resources/chat/completions';
import type { CompletionUsage } from 'openai/resources/completions';
import type { CreateEmbeddingResponse, EmbeddingCreateParams } from 'openai/resources/embeddings';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { databaseUnavailableReason } from '../../database/database-errors';
import type { LlmConfig } from '../../config/llm.config';
import {
  AgentLlm,
  LlmAdmissionPolicy,
  LlmAdmissionReservation,
  LlmCallActual,
  LlmCallIntent,
  NANOS_PER_USD,
  UsageOperation,
  UsageRecord,
} from '../../plugins/sdk';
import type { UsageJournal } from '../usage/journal/usage-journal.service';
import type { UsageRecorder } from '../usage/usage-recorder.service';
import { LlmBudgetExceededException, LlmInvalidArgumentException, LlmNotConfiguredException, LlmUnpricedModelException, LlmAdmissionUnavailableException } from './llm.exceptions';
import { MAX_REPORTED_TOKENS, trustedTokenCounts } from './reported-usage';
import { ASA_ATTR, GEN_AI_ATTR, genAiOperationName, openAiApiType } from './llm-span-attributes';
import { MAX_MODEL_NAME_LENGTH } from '../../common/model-name';
import { nanosToUsd, nanosToUsdExact, usdToNanos as parseUsd } from '../../common/money';
import type { PricingService, TokenCounts } from './pricing/pricing.service';
import type { TaskSpendReader } from './task-spend.reader';
import type { TokenEstimator } from './token-estimator';
import { PromptTokens } from './prompt-tokens';
import type { CountJob } from './token-count.pool';
import type { UsageTags } from '../../common/usage-tags';

/**
 * Output allowance assumed for the worst-case cost of a chat call that sets neither `max_tokens`
 * nor `max_completion_tokens` (budgets and admission policies see this as its maximum output).
 */
export const DEFAULT_MAX_OUTPUT_TOKENS = 4096;

export interface LlmCallOptions {
  /** Abort the call (the usage record then says `aborted`). */
  signal?: AbortSignal;
  /** Per-call timeout, overriding OPENAI_TIMEOUT_MS (the usage record then says `timeout`). */
  timeoutMs?: number;
}

export interface UsageLimits {
  within_limits: boolean;
  current_cost_usd: number;
  limit_usd: number;
  remaining_usd: number;
}

/** What `LlmClient.track` needs to admit and account a call it does not send itself. */
export interface TrackedCallSpec {
  operation: UsageOperation;
  /** The model as the provider is asked for it (priced under the client's provider). */
  model: string;
  /**
   * The prompt's count, as data: admission reserves its UTF-8 bound at once; the exact count (the
   * estimate when no usage comes back, the journal's) is made in a worker thread only when needed.
   */
  prompt: CountJob;
  maxOutputTokens: number;
  streamed: boolean;
  /** The request body, for the span's request attributes. */
  params: Record<string, unknown>;
}

/** What the caller of `track` learned from the response. */
export interface TrackedOutcome {
  responseModel: string | null;
  responseId?: string | null;
  finishReasons?: string[];
  /** Tokens the provider reported; null to count them locally (prompt + `completionText`), marked estimated. */
  tokens: TokenCounts | null;
  completionText?: string;
}

/** A call admitted by `LlmClient.track`, ended exactly once (later ends are ignored). */
export interface TrackedCall {
  /** The usage record's id (also sent upstream as X-Asa-Usage-Id). */
  readonly id: string;
  readonly openai: OpenAI;
  /** Signal, timeout and the usage-id header, for the SDK request. */
  readonly requestOptions: { signal?: AbortSignal; timeout?: number; headers: Record<string, string> };
  /** Runs `fn` inside the call's span (so the HTTP client span is its child). */
  run<T>(fn: () => Promise<T>): Promise<T>;
  markFirstToken(): void;
  succeed(outcome: TrackedOutcome): Promise<UsageRecord | null>;
  /** Failed before a response (`partial` absent) or in the middle of a stream (`partial`: what came so far). */
  fail(err: unknown, partial?: TrackedOutcome): Promise<UsageRecord | null>;
  /**
   * The client went away (before the answer, or in the middle of a stream): `abandoned`, with what
   * came so far; its tokens counted locally when `partial.tokens` is null (nothing, when the client
   * left before the request was sent).
   */
  abandon(partial: TrackedOutcome): Promise<UsageRecord | null>;
}

/** Everything a client needs, shared by every client the factory hands out. */
export interface LlmClientDeps {
  readonly openai: OpenAI | null;
  readonly config: LlmConfig;
  readonly pricing: PricingService;
  readonly estimator: TokenEstimator;
  readonly recorder: UsageRecorder;
  readonly journal: UsageJournal;
  readonly policies: readonly LlmAdmissionPolicy[];
  readonly spend: TaskSpendReader;
  readonly tracer: Tracer;
  readonly server: { address: string; port: number } | null;
  /** The provider's base URL as it may be shown (no credentials, no query). */
  readonly endpoint?: string;
}

/** What is known about a call when it ends. */
interface CallOutcome {
  status: 'success' | 'error';
  errorType: string | null;
  error?: unknown;
  responseModel: string | null;
  responseId?: string | null;
  finishReasons?: string[];
  tokens: TokenCounts;
  estimated: boolean;
}

/**
 * How long a call runs before its prompt's exact count is made for the journal (until then an
 * interrupted call would be charged the upper bound). Most calls to a real model last longer; a
 * quicker answer brings its own usage, and its count is never made.
 */
export const JOURNAL_COUNT_DELAY_MS = 100;

/** How long a call waits for the database to check its budget and quotas before it is refused. */
export const ADMISSION_DATABASE_WAIT_MS = 120_000;

/** Settles every reservation a call's admission took, with the call's real cost. */
type Settle = (actualCostNanos: number | null, actual?: LlmCallActual) => Promise<void>;

const ZERO_TOKENS: TokenCounts = { inputTokens: 0, cachedInputTokens: 0, cacheWriteTokens: 0, outputTokens: 0, reasoningTokens: 0 };

/**
 * The budget of one task scope: the spent cost is read once from the database, then kept in
 * memory; calls in flight reserve their worst case so concurrent calls cannot overshoot together.
 */
class TaskBudget {
  private spent: bigint | null = null;
  private loading: Promise<bigint> | null = null;
  private reserved = 0n;

  constructor(
    readonly taskId: string,
    readonly limitNanos: bigint,
    private readonly spend: TaskSpendReader,
  ) {}

  async reserve(worstCaseNanos: number | null, model: string): Promise<bigint> {
    if (this.spent === null) {
      this.loading ??= this.spend.spentNanos(this.taskId);
      try {
        this.spent ??= await this.loading;
      } catch (err) {
        this.loading = null; // a failed read (database down) is retried by the next call, not cached
        throw err;
      }
    }
    // Reached only for an unpriced model when LLM_UNPRICED_UNDER_BUDGET=allow: its cost is unknown, so
    // it reserves nothing and is only refused once the budget is already passed.
    const worst = BigInt(worstCaseNanos ?? 0);
    if (this.spent + this.reserved + worst > this.limitNanos) {
      throw new LlmBudgetExceededException(
        `LLM call refused: task "${this.taskId}" has a budget of ${nanosToUsdExact(this.limitNanos)} USD, has spent ` +
          `${nanosToUsdExact(this.spent)} USD${this.reserved > 0n ? ` (plus ${nanosToUsdExact(this.reserved)} USD reserved by calls in flight)` : ''}, ` +
          `and this ${model} call could cost up to ${nanosToUsdExact(worst)} USD`,
        { taskId: this.taskId, limitNanos: this.limitNanos.toString(), spentNanos: this.spent.toString(), worstCaseNanos: worst.toString() },
      );
    }
    this.reserved += worst;
    return worst;
  }

  settle(reservedNanos: bigint, actualNanos: number | null): void {
    this.reserved -= reservedNanos;
    if (this.spent !== null && actualNanos !== null) this.spent += BigInt(actualNanos);
  }
}

/**
 * An LLM client scoped to a task and/or user: every call (chat, streamed chat, embeddings) goes
 * through the admission seam (task budget, then each admission policy), runs in an OpenTelemetry
 * GenAI span, and produces exactly one usage record, whether it succeeds or fails.
 */
export class LlmClient implements AgentLlm {
  private readonly logger = new Logger(LlmClient.name);
  private readonly budget: TaskBudget | null;
  /** Where calls go: named in a failed task's failure_detail, so a wrong OPENAI_BASE_URL is plain to see. */
  readonly endpoint: string | undefined;

  constructor(
    private readonly deps: LlmClientDeps,
    readonly taskId: string | null,
    readonly userId: string | null,
    maxCostUsd: number | null = null,
    /** Stored on every record of this client (gateway `x-asa-tags`). */
    readonly tags: UsageTags | null = null,
  ) {
    this.endpoint = deps.endpoint;
    this.budget =
      maxCostUsd === null || maxCostUsd === undefined
        ? null
        : new TaskBudget(requireTaskId(taskId), usdToNanos(maxCostUsd, 'maxCostUsd'), deps.spend);
  }

  async chat(params: ChatCompletionCreateParamsNonStreaming, options: LlmCallOptions = {}): Promise<ChatCompletion> {
    const prompt = this.prompt({ kind: 'chat', model: params.model, messages: params.messages, tools: params.tools });
    const call = await this.begin('chat', params.model, prompt, maxOutputTokens(params), false, params as unknown as Record<string, unknown>, options.signal);
    const abortedBeforeSend = options.signal?.aborted === true;
    let response: ChatCompletion;
    try {
      const openai = this.requireOpenAi();
      response = await context.with(trace.setSpan(context.active(), call.span), () =>
        openai.chat.completions.create({ ...params, stream: false }, requestOptions(options, call.id)),
      );
    } catch (err) {
      call.stopClock();
      await call.finish(await this.failure(err, options, false, { prompt, abortedBeforeSend }));
      throw err;
    }
    call.stopClock(); // an estimate below may wait for a count: not the call's latency
    const usage = tokensFromUsage(response.usage);
    const completionText = (response.choices ?? []).map((c) => messageText(c.message)).join('');
    await call.finish({
      status: 'success',
      errorType: null,
      responseModel: response.model ?? null,
      responseId: response.id ?? null,
      finishReasons: (response.choices ?? []).map((c) => c.finish_reason).filter(Boolean),
      tokens: usage ?? (await this.estimateChat(prompt, completionText, params.model)),
      estimated: usage === null,
    });
    return response;
  }

  /**
   * Streams a chat completion. Always asks for usage in the stream (`stream_options.include_usage`);
   * when the provider still sends none, tokens are counted locally and the record is `estimated`.
   * A consumer that stops iterating early ends the request; its record says `abandoned`.
   */
  chatStream(
    params: Omit<ChatCompletionCreateParamsStreaming, 'stream'>,
    options: LlmCallOptions = {},
  ): AsyncIterable<ChatCompletionChunk> {
    return this.streamChat(params, options);
  }

  async embed(params: EmbeddingCreateParams, options: LlmCallOptions = {}): Promise<CreateEmbeddingResponse> {
    const prompt = this.prompt({ kind: 'embedding', model: params.model, input: params.input });
    const call = await this.begin('embeddings', params.model, prompt, 0, false, params as unknown as Record<string, unknown>, options.signal);
    const abortedBeforeSend = options.signal?.aborted === true;
    let response: CreateEmbeddingResponse;
    try {
      const openai = this.requireOpenAi();
      response = await context.with(trace.setSpan(context.active(), call.span), () =>
        openai.embeddings.create(params, requestOptions(options, call.id)),
      );
    } catch (err) {
      call.stopClock();
      await call.finish(await this.failure(err, options, false, { prompt, abortedBeforeSend }));
      throw err;
    }
    call.stopClock();
    const reported = response.usage?.prompt_tokens == null ? null : (trustedTokenCounts({ inputTokens: response.usage.prompt_tokens })?.inputTokens ?? null);
    await call.finish({
      status: 'success',
      errorType: null,
      responseModel: response.model ?? null,
      tokens: { ...ZERO_TOKENS, inputTokens: reported ?? (await prompt.exact()) },
      estimated: reported === null,
    });
    return response;
  }

  /**
   * For a caller that talks to the provider itself and passes its bytes on untouched (the
   * gateway): the same admission, journal, span, pricing and one usage record as `chat` and
   * `embed`, around a request the caller sends with `call.openai` and `call.requestOptions`.
   * Refused (budget, quota) before anything is sent. The returned call must be ended exactly once
   * with `succeed`, `fail` or `abandon`.
   */
  async track(spec: TrackedCallSpec, options: LlmCallOptions = {}): Promise<TrackedCall> {
    const prompt = this.prompt(spec.prompt);
    const call = await this.begin(spec.operation, spec.model, prompt, spec.maxOutputTokens, spec.streamed, spec.params, options.signal);
    const abortedBeforeSend = options.signal?.aborted === true;
    const openai = this.requireOpenAi();
    const outcome = async (o: TrackedOutcome) => ({
      responseModel: o.responseModel,
      responseId: o.responseId ?? null,
      finishReasons: o.finishReasons ?? [],
      tokens: o.tokens ?? (await this.estimateChat(prompt, o.completionText ?? '', spec.model)),
      estimated: o.tokens === null,
    });
    return {
      id: call.id,
      openai,
      requestOptions: requestOptions(options, call.id),
      run: (fn) => context.with(trace.setSpan(context.active(), call.span), fn),
      markFirstToken: () => call.markFirstToken(),
      succeed: async (o) => {
        call.stopClock();
        return call.finish({ status: 'success', errorType: null, ...(await outcome(o)) });
      },
      fail: async (err, partial) => {
        call.stopClock();
        return call.finish(
          partial
            ? { status: 'error', errorType: classifyError(err, options.signal, true), error: err, ...(await outcome(partial)) }
            : await this.failure(err, options, false, { prompt, abortedBeforeSend }),
        );
      },
      abandon: async (partial) => {
        call.stopClock();
        // Left before anything was sent: nothing reached the provider, so nothing is charged.
        if (abortedBeforeSend) return call.finish({ status: 'error', errorType: 'abandoned', responseModel: null, tokens: ZERO_TOKENS, estimated: false });
        return call.finish({ status: 'error', errorType: 'abandoned', ...(await outcome(partial)) });
      },
    };
  }

  /** The seed's `check_usage_limits`: the task's recorded LLM cost against a limit in USD. */
  async checkUsageLimits(opts: { maxCostPerTask: number }): Promise<UsageLimits> {
    const taskId = requireTaskId(this.taskId);
    const limit = usdToNanos(opts.maxCostPerTask, 'maxCostPerTask');
    const spent = await this.deps.spend.spentNanos(taskId);
    const remaining = spent >= limit ? 0n : limit - spent;
    return {
      within_limits: spent <= limit,
      current_cost_usd: nanosToUsd(spent),
      limit_usd: nanosToUsd(limit),
      remaining_usd: nanosToUsd(remaining),
    };
  }

  // --- internals ------------------------------------------------------------------------------

  private async *streamChat(
    params: Omit<ChatCompletionCreateParamsStreaming, 'stream'>,
    options: LlmCallOptions,
  ): AsyncGenerator<ChatCompletionChunk> {
    const prompt = this.prompt({ kind: 'chat', model: params.model, messages: params.messages, tools: params.tools });
    const call = await this.begin('chat', params.model, prompt, maxOutputTokens(params), true, params as unknown as Record<string, unknown>, options.signal);
    const acc = { text: '', usage: null as CompletionUsage | null, model: null as string | null, id: null as string | null, finish: [] as string[] };
    const partial = async (): Promise<Pick<CallOutcome, 'responseModel' | 'responseId' | 'finishReasons' | 'tokens' | 'estimated'>> => {
      const reported = tokensFromUsage(acc.usage);
      return {
        responseModel: acc.model,
        responseId: acc.id,
        finishReasons: acc.finish,
        tokens: reported ?? (await this.estimateChat(prompt, acc.text, params.model)),
        estimated: reported === null,
      };
    };

    const abortedBeforeSend = options.signal?.aborted === true;
    let stream: AsyncIterable<ChatCompletionChunk>;
    try {
      const openai = this.requireOpenAi();
      stream = await context.with(trace.setSpan(context.active(), call.span), () =>
        openai.chat.completions.create(
          { ...params, stream: true, stream_options: { ...(params.stream_options ?? {}), include_usage: true } },
          requestOptions(options, call.id),
        ),
      );
    } catch (err) {
      call.stopClock();
      await call.finish(await this.failure(err, options, false, { prompt, abortedBeforeSend }));
      throw err;
    }

    // What ended the stream; its token counts are added in `finally` (they may need a count in a worker).
    let ending: Pick<CallOutcome, 'status' | 'errorType' | 'error'> | null = null;
    try {
      for await (const chunk of stream) {
        if (chunk.model) acc.model = chunk.model;
        if (chunk.id) acc.id = chunk.id;
        if (chunk.usage) acc.usage = chunk.usage;
        for (const choice of chunk.choices ?? []) {
          const piece = deltaText(choice.delta);
          if (piece) {
            call.markFirstToken();
            acc.text += piece;
          }
          if (choice.finish_reason) acc.finish.push(choice.finish_reason);
        }
        yield chunk;
      }
      if (options.signal?.aborted) {
        // The SDK ends an aborted stream quietly; the caller asked for the abort, so say so.
        const err = new APIUserAbortError();
        ending = { status: 'error', errorType: 'aborted', error: err };
        throw err;
      }
      ending = { status: 'success', errorType: null };
    } catch (err) {
      ending ??= { status: 'error', errorType: classifyError(err, options.signal, true), error: err };
      throw err;
    } finally {
      // No ending here means the consumer stopped iterating (break/return): the SDK has aborted the request.
      ending ??= { status: 'error', errorType: 'abandoned' };
      call.stopClock();
      await call.finish({ ...ending, ...(await partial()) });
    }
  }

  /** Admission (task budget, then policies), then the span and the clock. Throws before any provider call when refused. */
  private async begin(
    operation: UsageOperation,
    model: string,
    prompt: PromptTokens,
    maxOutput: number,
    streamed: boolean,
    params: Record<string, unknown>,
    signal: AbortSignal | undefined,
  ): Promise<CallTracker> {
    if (typeof model !== 'string' || model.trim() === '') throw new LlmInvalidArgumentException('model is required: pass the model id, e.g. "gpt-4o"');
    if (model.length > MAX_MODEL_NAME_LENGTH) {
      throw new LlmInvalidArgumentException(`model must be at most ${MAX_MODEL_NAME_LENGTH} characters (got ${model.length}): "${model.slice(0, 40)}…"`);
    }
    this.requireOpenAi(); // not configured: refuse before anything is reserved or recorded
    const provider = this.deps.config.provider;
    // The worst case needs only an upper bound of the prompt: no tokenizing on the event loop.
    const maxCostNanos = this.deps.pricing.maxCostNanos(model, prompt.bound, maxOutput, { provider });
    if (maxCostNanos === null && this.budget && this.deps.config.unpricedUnderBudget !== 'allow') {
      throw new LlmUnpricedModelException(
        `LLM call refused: task "${this.budget.taskId}" has a budget, and ${this.deps.pricing.unpricedHint(model, provider)}; ` +
          'or set LLM_UNPRICED_UNDER_BUDGET=allow to let calls of unknown cost pass budgets',
        { taskId: this.budget.taskId, model, provider },
      );
    }
    const intent: LlmCallIntent = { taskId: this.taskId, userId: this.userId, provider, model, operation, maxCostNanos, maxTokens: prompt.bound + maxOutput };
    const settleAll = await this.admit(intent, signal);
    const call = new CallTracker(this, this.deps, operation, model, streamed, params, settleAll, prompt);
    // Durable before the request leaves: if the process dies during the call, the next start
    // records it as `interrupted` with this prompt's cost.
    await this.deps.journal.started({
      id: call.id,
      createdAtMs: call.createdAtMs,
      taskId: this.taskId,
      userId: this.userId,
      provider,
      operation,
      requestedModel: model,
      streamed,
      traceId: call.traceId,
      promptTokens: prompt.bound,
      ...(this.tags ? { tags: this.tags } : {}),
    });
    // A call still in flight after a moment gets its exact count journaled, for a crash to charge.
    prompt.countLater(JOURNAL_COUNT_DELAY_MS, (n) => {
      if (!call.ended) void this.deps.journal.counted(call.id, n);
    });
    return call;
  }

  /**
   * The task budget, then each admission policy. Returns the function that settles every
   * reservation taken. Budgets and quotas live in the database: while it is unreachable the
   * admission is retried (the call waits, as the task's other writes do) for up to
   * ADMISSION_DATABASE_WAIT_MS, then the call is refused without its address in the message.
   */
  private async admit(intent: LlmCallIntent, signal: AbortSignal | undefined): Promise<Settle> {
    const deadline = Date.now() + ADMISSION_DATABASE_WAIT_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.admitOnce(intent);
      } catch (err) {
        const reason = databaseUnavailableReason(err);
        if (reason === null) throw err;
        if (signal?.aborted || Date.now() >= deadline) {
          throw new LlmAdmissionUnavailableException(
            `LLM call not made: the database that holds budgets and quotas is unavailable (${reason}), ` +
              `for ${Math.round(ADMISSION_DATABASE_WAIT_MS / 1000)} s or until the call was stopped`,
          );
        }
        if (attempt === 0) this.logger.warn(`LLM call of ${intent.model} waits for the database to check its budget and quotas (${reason})`);
        await sleep(Math.min(5_000, 250 * 2 ** attempt), undefined, { signal }).catch(() => undefined);
      }
    }
  }

  private async admitOnce(intent: LlmCallIntent): Promise<Settle> {
    const budgetReserved = this.budget ? await this.budget.reserve(intent.maxCostNanos, intent.model) : 0n;
    const reservations: { policy: string; reservation: LlmAdmissionReservation }[] = [];
    const settleAll: Settle = async (actual, used = { totalTokens: 0 }) => {
      this.budget?.settle(budgetReserved, actual);
      for (const { policy, reservation } of reservations) {
        try {
          await reservation.settle(actual, used);
        } catch (err) {
          this.logger.error(`admission policy "${policy}" failed to settle a reservation: ${errorMessage(err)}`);
        }
      }
    };
    try {
      for (const policy of this.deps.policies) {
        const reservation = await policy.admit(intent);
        if (reservation) reservations.push({ policy: policy.name, reservation });
      }
    } catch (err) {
      // Refused: nothing was spent, so every reservation taken so far is settled at 0.
      await settleAll(0);
      throw err;
    }
    return settleAll;
  }

  /**
   * The outcome of a call that failed before any response. A call stopped (abort, SIGTERM) or
   * timed out after its request was sent has reached the provider, which bills its prompt: it is
   * charged the locally counted prompt, marked `estimated` (as a call interrupted by a crash is).
   * Refused or unreachable calls, and calls aborted before they were sent, are charged nothing.
   */
  private async failure(err: unknown, options: LlmCallOptions, midStream: boolean, sent: { prompt: PromptTokens; abortedBeforeSend: boolean }): Promise<CallOutcome> {
    const errorType = classifyError(err, options.signal, midStream);
    const reachedProvider = !sent.abortedBeforeSend && (errorType === 'aborted' || errorType === 'timeout');
    return {
      status: 'error',
      errorType,
      error: err,
      responseModel: null,
      tokens: reachedProvider ? { ...ZERO_TOKENS, inputTokens: await sent.prompt.exact() } : ZERO_TOKENS,
      estimated: reachedProvider,
    };
  }

  /** A prompt's upper bound now (no tokenizing on the event loop), its exact count later, in a worker, if it is needed. */
  private prompt(job: CountJob): PromptTokens {
    this.deps.estimator.warmUp();
    return new PromptTokens(this.deps.estimator.bound(job), (signal) => this.deps.estimator.countAsync(job, signal));
  }

  private async estimateChat(prompt: PromptTokens, completionText: string, model: string): Promise<TokenCounts> {
    const [inputTokens, outputTokens] = await Promise.all([prompt.exact(), this.deps.estimator.countTextAsync(completionText, model)]);
    return { ...ZERO_TOKENS, inputTokens, outputTokens };
  }

  private requireOpenAi(): OpenAI {
    if (!this.deps.openai) {
      throw new LlmNotConfiguredException('No LLM provider configured: set OPENAI_API_KEY (and OPENAI_BASE_URL for another OpenAI-compatible server)');
    }
    return this.deps.openai;
  }
}

/** One call in flight: its span, its clock, and the one usage record it ends with. */
class CallTracker {
  readonly id = randomUUID();
  readonly createdAtMs = Date.now();
  readonly span: Span;
  private readonly t0 = performance.now();
  private endedAt: number | null = null;
  private ttftMs: number | null = null;
  private finished = false;
  private static readonly logger = new Logger('LlmUsageCapture');

  constructor(
    private readonly client: LlmClient,
    private readonly deps: LlmClientDeps,
    private readonly operation: UsageOperation,
    private readonly model: string,
    private readonly streamed: boolean,
    params: Record<string, unknown>,
    private readonly settle: Settle,
    private readonly prompt: PromptTokens,
  ) {
    this.span = deps.tracer.startSpan(`${genAiOperationName(operation)} ${model}`, { kind: SpanKind.CLIENT, attributes: this.requestAttributes(params) });
  }

  get ended(): boolean {
    return this.finished;
  }

  /** The provider's part is over: the latency recorded ends here, whatever the record still waits for. */
  stopClock(): void {
    this.endedAt ??= performance.now();
  }

  get traceId(): string | null {
    const spanContext = this.span.spanContext();
    return isSpanContextValid(spanContext) ? spanContext.traceId : null;
  }

  markFirstToken(): void {
    if (this.ttftMs === null) this.ttftMs = round3(performance.now() - this.t0);
  }

  /** Prices the call, records it, settles the admission and ends the span. Never throws. */
  async finish(outcome: CallOutcome): Promise<UsageRecord | null> {
    if (this.finished) return null;
    this.finished = true;
    this.prompt.cancel(); // the outcome holds every count the record needs
    const latencyMs = round3((this.endedAt ?? performance.now()) - this.t0);
    let record: UsageRecord | null = null;
    try {
      const provider = this.deps.config.provider;
      const quote = this.deps.pricing.price(outcome.tokens, [outcome.responseModel, this.model], { provider, at: this.createdAtMs });
      const t = outcome.tokens;
      record = {
        id: this.id,
        createdAtMs: this.createdAtMs,
        taskId: this.client.taskId,
        userId: this.client.userId,
        traceId: this.traceId,
        provider,
        operation: this.operation,
        requestedModel: this.model,
        responseModel: outcome.responseModel,
        inputTokens: t.inputTokens,
        cachedInputTokens: t.cachedInputTokens,
        cacheWriteTokens: t.cacheWriteTokens,
        outputTokens: t.outputTokens,
        reasoningTokens: t.reasoningTokens,
        totalTokens: t.inputTokens + t.outputTokens,
        costNanos: quote.costNanos,
        unpriced: quote.unpriced,
        priceSource: quote.priceSource,
        latencyMs,
        timeToFirstTokenMs: this.streamed ? this.ttftMs : null,
        streamed: this.streamed,
        status: outcome.status,
        errorType: outcome.errorType,
        estimated: outcome.estimated,
        ...(this.client.tags ? { tags: this.client.tags } : {}),
      };
      this.annotateSpan(record, outcome);
    } catch (err) {
      CallTracker.logger.error(`could not build the usage record of a ${this.operation} ${this.model} call: ${errorMessage(err)}`);
    }
    try {
      await this.settle(record?.costNanos ?? null, { totalTokens: record?.totalTokens ?? 0 });
    } catch (err) {
      CallTracker.logger.error(`could not settle the admission of a ${this.operation} ${this.model} call: ${errorMessage(err)}`);
    }
    try {
      this.span.end();
    } catch {
      // a broken tracer must not affect the call
    }
    if (record) {
      try {
        await this.deps.recorder.record(record);
      } catch (err) {
        CallTracker.logger.error(`could not queue usage record ${record.id}: ${errorMessage(err)}`);
      }
    }
    return record;
  }

  private requestAttributes(params: Record<string, unknown>) {
    const attrs: Record<string, string | number | boolean> = {
      [GEN_AI_ATTR.OPERATION_NAME]: genAiOperationName(this.operation),
      [GEN_AI_ATTR.PROVIDER_NAME]: this.deps.config.provider,
      [GEN_AI_ATTR.REQUEST_MODEL]: this.model,
      [ASA_ATTR.USAGE_RECORD_ID]: this.id,
    };
    const apiType = openAiApiType(this.operation);
    if (apiType) {
      attrs[GEN_AI_ATTR.OPENAI_API_TYPE] = apiType;
      attrs[GEN_AI_ATTR.REQUEST_STREAM] = this.streamed;
    }
    const maxTokens = params.max_completion_tokens ?? params.max_tokens ?? params.max_output_tokens;
    if (typeof maxTokens === 'number') attrs[GEN_AI_ATTR.REQUEST_MAX_TOKENS] = maxTokens;
    if (typeof params.temperature === 'number') attrs[GEN_AI_ATTR.REQUEST_TEMPERATURE] = params.temperature;
    if (typeof params.top_p === 'number') attrs[GEN_AI_ATTR.REQUEST_TOP_P] = params.top_p;
    if (this.deps.server) {
      attrs[GEN_AI_ATTR.SERVER_ADDRESS] = this.deps.server.address;
      attrs[GEN_AI_ATTR.SERVER_PORT] = this.deps.server.port;
    }
    if (this.client.taskId) attrs[ASA_ATTR.TASK_ID] = this.client.taskId;
    if (this.client.userId) attrs[ASA_ATTR.USER_ID] = this.client.userId;
    return attrs;
  }

  private annotateSpan(r: UsageRecord, outcome: CallOutcome): void {
    const s = this.span;
    if (r.responseModel) s.setAttribute(GEN_AI_ATTR.RESPONSE_MODEL, r.responseModel);
    if (outcome.responseId) s.setAttribute(GEN_AI_ATTR.RESPONSE_ID, outcome.responseId);
    if (outcome.finishReasons && outcome.finishReasons.length > 0) s.setAttribute(GEN_AI_ATTR.RESPONSE_FINISH_REASONS, outcome.finishReasons);
    if (r.timeToFirstTokenMs !== null) s.setAttribute(GEN_AI_ATTR.RESPONSE_TIME_TO_FIRST_CHUNK, r.timeToFirstTokenMs / 1000);
    s.setAttributes({
      [GEN_AI_ATTR.USAGE_INPUT_TOKENS]: r.inputTokens,
      [GEN_AI_ATTR.USAGE_OUTPUT_TOKENS]: r.outputTokens,
      [GEN_AI_ATTR.USAGE_CACHE_READ_INPUT_TOKENS]: r.cachedInputTokens,
      [GEN_AI_ATTR.USAGE_CACHE_CREATION_INPUT_TOKENS]: r.cacheWriteTokens,
      [GEN_AI_ATTR.USAGE_REASONING_OUTPUT_TOKENS]: r.reasoningTokens,
      [ASA_ATTR.UNPRICED]: r.unpriced,
      [ASA_ATTR.USAGE_ESTIMATED]: r.estimated,
    });
    if (r.costNanos !== null) {
      s.setAttribute(ASA_ATTR.COST_NANOS, r.costNanos);
      s.setAttribute(ASA_ATTR.COST_USD, r.costNanos / NANOS_PER_USD);
    }
    if (r.priceSource) s.setAttribute(ASA_ATTR.PRICE_SOURCE, r.priceSource);
    if (r.status === 'error') {
      s.setAttribute(GEN_AI_ATTR.ERROR_TYPE, r.errorType ?? 'error');
      if (outcome.error instanceof Error) s.recordException(outcome.error);
      s.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error instanceof Error ? outcome.error.message : (r.errorType ?? undefined) });
    }
  }
}

// --- helpers ------------------------------------------------------------------------------------

/** `http_<status>`, `timeout`, `aborted`, `connection`, `stream_interrupted`, `provider_error`, `invalid_response` or `unknown`. */
export function classifyError(err: unknown, signal: AbortSignal | undefined, midStream: boolean): string {
  if (err instanceof APIUserAbortError || (signal?.aborted && !(err instanceof APIError && typeof err.status === 'number'))) return 'aborted';
  if (err instanceof APIConnectionTimeoutError) return 'timeout';
  if (err instanceof APIConnectionError) return 'connection';
  if (err instanceof APIError) return typeof err.status === 'number' ? `http_${err.status}` : 'provider_error';
  if (err instanceof LlmNotConfiguredException) return 'not_configured';
  if (midStream) return 'stream_interrupted';
  if (err instanceof SyntaxError) return 'invalid_response';
  return 'unknown';
}

/** The counts of a Chat Completions usage object; null when absent or not to be trusted (see trustedTokenCounts). */
export function tokensFromUsage(u: CompletionUsage | null | undefined): TokenCounts | null {
  if (!u || typeof u !== 'object' || u.prompt_tokens === undefined || u.prompt_tokens === null) return null;
  return trustedTokenCounts({
    inputTokens: u.prompt_tokens,
    cachedInputTokens: u.prompt_tokens_details?.cached_tokens,
    cacheWriteTokens: u.prompt_tokens_details?.cache_write_tokens,
    outputTokens: u.completion_tokens,
    reasoningTokens: u.completion_tokens_details?.reasoning_tokens,
  });
}

function messageText(m: ChatCompletion['choices'][number]['message'] | undefined): string {
  if (!m) return '';
  let text = m.content ?? m.refusal ?? '';
  for (const call of m.tool_calls ?? []) {
    if (call.type === 'function') text += call.function.name + call.function.arguments;
  }
  return text;
}

function deltaText(d: ChatCompletionChunk['choices'][number]['delta'] | undefined): string {
  if (!d) return '';
  let text = d.content ?? d.refusal ?? '';
  for (const call of d.tool_calls ?? []) text += (call.function?.name ?? '') + (call.function?.arguments ?? '');
  return text;
}

/** The output a call may produce, for its worst-case reservation: at most what a record can be charged (MAX_REPORTED_TOKENS). */
function maxOutputTokens(params: { max_tokens?: number | null; max_completion_tokens?: number | null }): number {
  return Math.min(params.max_completion_tokens ?? params.max_tokens ?? DEFAULT_MAX_OUTPUT_TOKENS, MAX_REPORTED_TOKENS);
}

/** Sent with every provider request: the id of the call's usage record, to match provider-side logs with records. */
export const USAGE_ID_HEADER = 'X-Asa-Usage-Id';

function requestOptions(o: LlmCallOptions, usageId: string): { signal?: AbortSignal; timeout?: number; headers: Record<string, string> } {
  return {
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.timeoutMs !== undefined ? { timeout: o.timeoutMs } : {}),
    headers: { [USAGE_ID_HEADER]: usageId },
  };
}

function requireTaskId(taskId: string | null): string {
  if (!taskId) throw new LlmInvalidArgumentException('a task budget needs a task: create the client with forTask(taskId, ...)');
  return taskId;
}

/** Exact USD -> nano-dollars (rounded half-up), from the number's decimal form. */
export function usdToNanos(usd: number, name: string): bigint {
  const nanos = parseUsd(usd);
  if (nanos === null) throw new LlmInvalidArgumentException(`${name} must be a non-negative number of USD, got ${JSON.stringify(usd)}`);
  return nanos;
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
