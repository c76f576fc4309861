import { OpenAiErrorException, openAiError } from '../../common/openai-error';
import type { TrackedOutcome } from '../llm/llm-client';
import { DEFAULT_MAX_OUTPUT_TOKENS, tokensFromUsage } from '../llm/llm-client';
import { MAX_REPORTED_TOKENS, trustedTokenCounts } from '../llm/reported-usage';
import type { TokenCounts } from '../llm/pricing/pricing.service';
import type { CountJob } from '../llm/token-count.pool';
import type { SseEvent } from './sse-events';

/** The three call kinds the gateway forwards. */
export type GatewayEndpoint = 'chat' | 'embeddings' | 'responses';

type Json = Record<string, unknown>;

export const isJsonObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * What the request's prompt tokens are counted from, as data: counting it is LlmClient's (a UTF-8
 * bound for admission at once, the exact count in a worker thread when a record needs it), so the
 * gateway never tokenizes on the event loop.
 */
export function promptCountJob(endpoint: GatewayEndpoint, body: Json, model: string): CountJob {
  const tools = Array.isArray(body.tools) ? body.tools : undefined;
  if (endpoint === 'embeddings') return { kind: 'embedding', model, input: body.input };
  if (endpoint === 'chat') return { kind: 'chat', model, messages: Array.isArray(body.messages) ? body.messages : [], tools };
  return { kind: 'responses', model, instructions: body.instructions, input: body.input, tools };
}

/** The output-limit fields each call kind takes; a client may give several (a chat's old and new names). */
const OUTPUT_LIMIT_FIELDS: Record<GatewayEndpoint, readonly string[]> = {
  chat: ['max_tokens', 'max_completion_tokens'],
  responses: ['max_output_tokens'],
  embeddings: [],
};

/**
 * Output tokens the call may produce at most, for the worst-case cost that budgets and quotas
 * reserve. An output limit given but not a whole number >= 0 is refused (OpenAI refuses it too):
 * read as absent it would be reserved at the default while the upstream might read it otherwise.
 * Several limits given: the largest is reserved, whichever one the upstream honours.
 */
export function maxOutputTokens(endpoint: GatewayEndpoint, body: Json): number {
  if (endpoint === 'embeddings') return 0;
  let perChoice: number | null = null;
  for (const field of OUTPUT_LIMIT_FIELDS[endpoint]) {
    const given = body[field];
    if (given === undefined || given === null) continue; // null is the SDKs' "no limit"
    if (typeof given !== 'number' || !Number.isInteger(given) || given < 0) {
      throw new OpenAiErrorException(
        400,
        openAiError(400, `Invalid '${field}': expected a whole number of tokens >= 0, got ${describeJson(given)}`, { param: field, code: 'invalid_value' }),
      );
    }
    perChoice = Math.max(perChoice ?? 0, given);
  }
  // A chat asking for `n` choices may be billed `n` times the output: the worst case reserves them all.
  const choices = endpoint === 'chat' && typeof body.n === 'number' && Number.isInteger(body.n) && body.n > 1 ? body.n : 1;
  return Math.min((perChoice ?? DEFAULT_MAX_OUTPUT_TOKENS) * choices, MAX_REPORTED_TOKENS);
}

/** A value as an error message may show it: short, its type plain. */
function describeJson(value: unknown): string {
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

/** Token counts of a Responses API `usage` object. */
export function tokensFromResponsesUsage(u: unknown): TokenCounts | null {
  if (!isJsonObject(u) || u.input_tokens === undefined || u.input_tokens === null) return null;
  const inDetails = isJsonObject(u.input_tokens_details) ? u.input_tokens_details : {};
  const outDetails = isJsonObject(u.output_tokens_details) ? u.output_tokens_details : {};
  return trustedTokenCounts({
    inputTokens: u.input_tokens,
    cachedInputTokens: inDetails.cached_tokens,
    outputTokens: u.output_tokens,
    reasoningTokens: outDetails.reasoning_tokens,
  });
}

/** What a whole (non-streamed) response says about the call. */
export function outcomeOfResponse(endpoint: GatewayEndpoint, json: unknown): TrackedOutcome {
  if (!isJsonObject(json)) return { responseModel: null, tokens: null };
  const responseModel = typeof json.model === 'string' ? json.model : null;
  const responseId = typeof json.id === 'string' ? json.id : null;
  if (endpoint === 'embeddings') {
    const u = isJsonObject(json.usage) ? json.usage : null;
    const tokens = u?.prompt_tokens === undefined || u?.prompt_tokens === null ? null : trustedTokenCounts({ inputTokens: u.prompt_tokens });
    return { responseModel, tokens };
  }
  if (endpoint === 'responses') {
    return { responseModel, responseId, tokens: tokensFromResponsesUsage(json.usage), completionText: responsesOutputText(json.output) };
  }
  const choices = Array.isArray(json.choices) ? json.choices.filter(isJsonObject) : [];
  return {
    responseModel,
    responseId,
    finishReasons: choices.map((c) => c.finish_reason).filter((r): r is string => typeof r === 'string'),
    tokens: tokensFromUsage(json.usage as Parameters<typeof tokensFromUsage>[0]),
    completionText: choices.map((c) => (isJsonObject(c.message) && typeof c.message.content === 'string' ? c.message.content : '')).join(''),
  };
}

function responsesOutputText(output: unknown): string {
  if (!Array.isArray(output)) return '';
  let text = '';
  for (const item of output) {
    if (!isJsonObject(item) || !Array.isArray(item.content)) continue;
    for (const part of item.content) if (isJsonObject(part) && typeof part.text === 'string') text += part.text;
  }
  return text;
}

/**
 * Reads a streamed call's events as they pass: model, id, text so far (for the estimate of a
 * stream cut short), finish reasons and the final usage.
 */
/** What the gateway learns from one stream event (see `StreamAccumulator.take`). */
export interface EventSeen {
  content: boolean;
  usageOnly: boolean;
  final: boolean;
}

const NOTHING: EventSeen = { content: false, usageOnly: false, final: false };

/** The message of an error event: `{ "error": {...} }` (chat), `type: "error"` or `response.failed` (Responses); null for any other event. */
function streamError(ev: Json): string | null {
  const describe = (e: unknown, fallback: string) => (isJsonObject(e) && typeof e.message === 'string' ? e.message.slice(0, 500) : fallback);
  if (ev.type === 'response.failed') return describe(isJsonObject(ev.response) ? ev.response.error : null, 'response.failed');
  if (ev.type === 'error') return describe(ev, describe(ev.error, 'error event'));
  if (ev.error !== undefined && ev.error !== null) return describe(ev.error, 'error in the stream');
  return null;
}

/** The events a Responses API stream ends with, one of them (with the response's usage). */
const RESPONSES_FINAL_EVENTS = new Set(['response.completed', 'response.incomplete', 'response.failed']);

export class StreamAccumulator {
  private text = '';
  private model: string | null = null;
  private id: string | null = null;
  private readonly finish: string[] = [];
  private tokens: TokenCounts | null = null;
  /** An error the upstream reported inside the stream (a chat chunk's `error`, a Responses `error` or `response.failed` event). */
  error: string | null = null;

  constructor(private readonly endpoint: 'chat' | 'responses') {}

  /**
   * Takes one event; returns whether it carries content (the first such marks the time to first
   * token), whether it is the usage-only chunk that chat streams end with when usage is asked for,
   * and whether it is the stream's last word (`[DONE]`, or the Responses API's final event).
   */
  take(ev: SseEvent): EventSeen {
    if (ev.data === '[DONE]') return { content: false, usageOnly: false, final: true };
    if (ev.data === null) return NOTHING;
    let json: unknown;
    try {
      json = JSON.parse(ev.data);
    } catch {
      return NOTHING;
    }
    if (!isJsonObject(json)) return NOTHING;
    if (this.error === null) this.error = streamError(json);
    return this.endpoint === 'chat' ? this.takeChat(json) : this.takeResponses(json);
  }

  outcome(): TrackedOutcome {
    return { responseModel: this.model, responseId: this.id, finishReasons: this.finish, tokens: this.tokens, completionText: this.text };
  }

  private takeChat(chunk: Json): EventSeen {
    if (typeof chunk.model === 'string') this.model = chunk.model;
    if (typeof chunk.id === 'string') this.id = chunk.id;
    const usage = tokensFromUsage(chunk.usage as Parameters<typeof tokensFromUsage>[0]);
    if (usage) this.tokens = usage;
    const choices = Array.isArray(chunk.choices) ? chunk.choices : [];
    let content = false;
    for (const choice of choices) {
      if (!isJsonObject(choice)) continue;
      const delta = isJsonObject(choice.delta) ? choice.delta : {};
      let piece = typeof delta.content === 'string' ? delta.content : typeof delta.refusal === 'string' ? delta.refusal : '';
      if (Array.isArray(delta.tool_calls)) {
        for (const call of delta.tool_calls) {
          const fn = isJsonObject(call) && isJsonObject(call.function) ? call.function : {};
          piece += (typeof fn.name === 'string' ? fn.name : '') + (typeof fn.arguments === 'string' ? fn.arguments : '');
        }
      }
      if (piece) {
        content = true;
        this.text += piece;
      }
      if (typeof choice.finish_reason === 'string') this.finish.push(choice.finish_reason);
    }
    return { content, usageOnly: usage !== null && choices.length === 0, final: false };
  }

  private takeResponses(ev: Json): EventSeen {
    const response = isJsonObject(ev.response) ? ev.response : null;
    if (response) {
      if (typeof response.model === 'string') this.model = response.model;
      if (typeof response.id === 'string') this.id = response.id;
      const usage = tokensFromResponsesUsage(response.usage);
      if (usage) this.tokens = usage;
      if (typeof response.status === 'string' && response.status !== 'in_progress' && response.status !== 'queued') this.finish.push(response.status);
    }
    if (typeof ev.type === 'string' && ev.type.endsWith('.delta') && typeof ev.delta === 'string' && ev.delta !== '') {
      this.text += ev.delta;
      return { content: true, usageOnly: false, final: false };
    }
    return { content: false, usageOnly: false, final: typeof ev.type === 'string' && RESPONSES_FINAL_EVENTS.has(ev.type) };
  }
}
