import type { UsageOperation } from '../../plugins/sdk/usage-record';

/**
 * Attributes of the span around every LLM call (span name `{operation} {model}`, e.g. `chat gpt-4o`,
 * kind CLIENT). Standard names follow the OpenTelemetry GenAI semantic conventions
 * (semantic-conventions 1.45 / semantic-conventions-genai); the `asa.*` ones are this service's own.
 *
 * | attribute                                  | type     | when                                              |
 * |--------------------------------------------|----------|---------------------------------------------------|
 * | gen_ai.operation.name                      | string   | always: `chat` or `embeddings` (see below)        |
 * | openai.api.type                            | string   | chat and Responses API calls: `chat_completions` or `responses` |
 * | gen_ai.provider.name                       | string   | always: the pricing provider id (`LLM_PROVIDER`)  |
 * | gen_ai.request.model                       | string   | always                                            |
 * | gen_ai.request.max_tokens                  | int      | when max_tokens / max_completion_tokens is set    |
 * | gen_ai.request.temperature                 | double   | when set                                          |
 * | gen_ai.request.top_p                       | double   | when set                                          |
 * | gen_ai.request.stream                      | boolean  | chat and Responses API calls                      |
 * | gen_ai.response.model                      | string   | when the provider answered                        |
 * | gen_ai.response.id                         | string   | when the provider answered                        |
 * | gen_ai.response.finish_reasons             | string[] | chat, when the provider answered                  |
 * | gen_ai.response.time_to_first_chunk        | double   | streams: seconds until the first content chunk    |
 * | gen_ai.usage.input_tokens                  | int      | always (0 on failures before a response)          |
 * | gen_ai.usage.output_tokens                 | int      | always                                            |
 * | gen_ai.usage.cache_read.input_tokens       | int      | always (part of input_tokens)                     |
 * | gen_ai.usage.cache_creation.input_tokens   | int      | always (part of input_tokens)                     |
 * | gen_ai.usage.reasoning.output_tokens       | int      | always (part of output_tokens)                    |
 * | server.address / server.port               | string/int | host and port of the provider's base URL        |
 * | error.type                                 | string   | failures: `http_429`, `timeout`, `aborted`, ...   |
 * | asa.cost_usd                               | double   | priced calls: cost in USD (rounded to the nano)   |
 * | asa.cost_nanos                             | int      | priced calls: exact cost in nano-dollars          |
 * | asa.unpriced                               | boolean  | always: true when the model has no known price    |
 * | asa.price_source                           | string   | priced calls: e.g. `genai-prices@0.1.8:openai/gpt-4o` |
 * | asa.task_id                                | string   | calls made for a task                             |
 * | asa.user_id                                | string   | calls made for a user                             |
 * | asa.usage.estimated                        | boolean  | always: true when token counts were computed locally |
 * | asa.usage_record_id                        | string   | always: id of the usage record (the `llm_usage` row) |
 *
 * The span status is ERROR on failures (with the exception recorded), UNSET otherwise.
 *
 * A usage record's `operation` names the API (`chat`, `embeddings`, `responses`). The semantic
 * conventions' OpenAI page treats the Responses API as inference like Chat Completions: its
 * `gen_ai.operation.name` is the well-known `chat` (a well-known value that applies MUST be used),
 * and `openai.api.type` tells the two APIs apart on the span. `genAiOperationName` is that
 * mapping, used by the span and by the OTLP sink's metrics alike (whose semantic-convention
 * attributes have no `openai.api.type`; its log records carry the record's `operation`).
 */
export const GEN_AI_ATTR = {
  OPERATION_NAME: 'gen_ai.operation.name',
  PROVIDER_NAME: 'gen_ai.provider.name',
  REQUEST_MODEL: 'gen_ai.request.model',
  REQUEST_MAX_TOKENS: 'gen_ai.request.max_tokens',
  REQUEST_TEMPERATURE: 'gen_ai.request.temperature',
  REQUEST_TOP_P: 'gen_ai.request.top_p',
  REQUEST_STREAM: 'gen_ai.request.stream',
  RESPONSE_MODEL: 'gen_ai.response.model',
  RESPONSE_ID: 'gen_ai.response.id',
  RESPONSE_FINISH_REASONS: 'gen_ai.response.finish_reasons',
  RESPONSE_TIME_TO_FIRST_CHUNK: 'gen_ai.response.time_to_first_chunk',
  USAGE_INPUT_TOKENS: 'gen_ai.usage.input_tokens',
  USAGE_OUTPUT_TOKENS: 'gen_ai.usage.output_tokens',
  USAGE_CACHE_READ_INPUT_TOKENS: 'gen_ai.usage.cache_read.input_tokens',
  USAGE_CACHE_CREATION_INPUT_TOKENS: 'gen_ai.usage.cache_creation.input_tokens',
  USAGE_REASONING_OUTPUT_TOKENS: 'gen_ai.usage.reasoning.output_tokens',
  SERVER_ADDRESS: 'server.address',
  SERVER_PORT: 'server.port',
  ERROR_TYPE: 'error.type',
  OPENAI_API_TYPE: 'openai.api.type',
} as const;

/** `gen_ai.operation.name` of a call recorded under `operation` (see above). */
export function genAiOperationName(operation: UsageOperation): 'chat' | 'embeddings' {
  return operation === 'embeddings' ? 'embeddings' : 'chat';
}

/** `openai.api.type` of a call recorded under `operation`; null for embeddings (the attribute names inference APIs). */
export function openAiApiType(operation: UsageOperation): 'chat_completions' | 'responses' | null {
  return operation === 'embeddings' ? null : operation === 'responses' ? 'responses' : 'chat_completions';
}

export const ASA_ATTR = {
  COST_USD: 'asa.cost_usd',
  COST_NANOS: 'asa.cost_nanos',
  UNPRICED: 'asa.unpriced',
  PRICE_SOURCE: 'asa.price_source',
  TASK_ID: 'asa.task_id',
  USER_ID: 'asa.user_id',
  USAGE_ESTIMATED: 'asa.usage.estimated',
  USAGE_RECORD_ID: 'asa.usage_record_id',
} as const;

/** Name of the tracer that creates LLM spans. */
export const LLM_TRACER_NAME = 'asa-backend.llm';
