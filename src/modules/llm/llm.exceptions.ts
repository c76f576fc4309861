import { HttpStatus } from '@nestjs/common';
import { DomainException } from '../../common/domain.exception';

/** The call would take the task past its budget; the provider was not called. */
export class LlmBudgetExceededException extends DomainException {
  readonly code = 'LLM_BUDGET_EXCEEDED';
  readonly status = HttpStatus.PAYMENT_REQUIRED;
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
