import type { ErrorBody } from './http-exception.filter';

/** The error shape OpenAI's SDKs parse (`error.message`, `error.type`, `error.code`). */
export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null; [extra: string]: unknown };
}

/** An answer the gateway gives in OpenAI's error shape, as it is (an upstream's error, an unknown model). */
export class OpenAiErrorException extends Error {
  constructor(
    readonly status: number,
    readonly body: OpenAiErrorBody,
    readonly headers: Record<string, string> = {},
  ) {
    super(body.error.message);
    this.name = 'OpenAiErrorException';
  }
}

/** Requests under /v1 are the OpenAI-compatible gateway's: their errors take OpenAI's shape. */
export function isOpenAiPath(url: string | undefined): boolean {
  return url !== undefined && /^\/v1(\/|\?|$)/.test(url);
}

export function openAiError(status: number, message: string, opts: { type?: string; code?: string | null; param?: string | null } = {}): OpenAiErrorBody {
  return { error: { message, type: opts.type ?? openAiErrorType(status), param: opts.param ?? null, code: opts.code ?? null } };
}

/**
 * The service's own error (as the global filter built it) in OpenAI's shape. A budget or quota
 * refusal becomes a 429 `budget_exceeded` that SDKs must not retry (`x-should-retry: false`):
 * repeating it cannot succeed until the window or the rule changes.
 */
export function toOpenAiError(body: ErrorBody): { status: number; body: OpenAiErrorBody; headers: Record<string, string> } {
  if (body.code === 'LLM_BUDGET_EXCEEDED') {
    return {
      status: 429,
      body: openAiError(429, body.message, { type: 'insufficient_quota', code: 'budget_exceeded' }),
      headers: { 'x-should-retry': 'false' },
    };
  }
  const status = body.statusCode;
  const code = body.code ? body.code.toLowerCase() : status === 401 ? 'invalid_api_key' : null;
  return { status, body: openAiError(status, body.message, { code }), headers: {} };
}

function openAiErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}
