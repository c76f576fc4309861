import { HttpStatus } from '@nestjs/common';
import { DomainException } from '../../common/domain.exception';

/** The call would take the task past its budget; the provider was not called. */
export class LlmBudgetExceededException extends DomainException {
  readonly code = 'LLM_BUDGET_EXCEEDED';
  readonly status = HttpStatus.PAYMENT_REQUIRED;
}

/**
 * The model has no known price and a budget applies to the call: an unpriced call could spend
 * without limit, so it is refused unless LLM_UNPRICED_UNDER_BUDGET=allow. The provider was not called.
 */
export class LlmUnpricedModelException extends DomainException {
  readonly code = 'LLM_UNPRICED_MODEL';
  readonly status = HttpStatus.UNPROCESSABLE_ENTITY;
}

/**
 * The database that holds budgets and quotas stayed unreachable while the call waited to be
 * admitted; the provider was not called.
 */
export class LlmAdmissionUnavailableException extends DomainException {
  readonly code = 'LLM_ADMISSION_UNAVAILABLE';
  readonly status = HttpStatus.SERVICE_UNAVAILABLE;
}

/**
 * The failure reason of a task whose LLM call was not made (refused by a budget or quota, or not
 * admitted while the database was away), or null for any other error. Matched by code, so a
 * third-party AgentLlm (or a second copy of this package) can signal a refusal the same way.
 */
export function llmRefusalReason(err: unknown): 'budget_exceeded' | 'unpriced_model' | 'database_unavailable' | null {
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof LlmBudgetExceededException || code === 'LLM_BUDGET_EXCEEDED') return 'budget_exceeded';
  if (err instanceof LlmUnpricedModelException || code === 'LLM_UNPRICED_MODEL') return 'unpriced_model';
  if (err instanceof LlmAdmissionUnavailableException || code === 'LLM_ADMISSION_UNAVAILABLE') return 'database_unavailable';
  return null;
}

/** A caller passed an argument the client cannot use (e.g. a negative budget). */
export class LlmInvalidArgumentException extends DomainException {
  readonly code = 'LLM_INVALID_ARGUMENT';
  readonly status = HttpStatus.BAD_REQUEST;
}

/** No API key is configured for the default OpenAI endpoint; the provider was not called. */
export class LlmNotConfiguredException extends DomainException {
  readonly code = 'LLM_NOT_CONFIGURED';
  readonly status = HttpStatus.SERVICE_UNAVAILABLE;
}
