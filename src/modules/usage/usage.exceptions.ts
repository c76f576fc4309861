import { HttpStatus } from '@nestjs/common';
import { DomainException } from '../../common/domain.exception';

export class UsageTaskNotFoundException extends DomainException {
  readonly code = 'USAGE_TASK_NOT_FOUND';
  readonly status = HttpStatus.NOT_FOUND;
  constructor(taskId: string) {
    super(`Task "${taskId}" not found: no task and no recorded LLM usage has this id`);
  }
}

export class UsageAccessDeniedException extends DomainException {
  readonly code = 'USAGE_ACCESS_DENIED';
  readonly status = HttpStatus.FORBIDDEN;
  constructor(what: string) {
    super(`This API key may only read its own user's usage, not ${what}`);
  }
}

/** A filter of the usage records list that the validator cannot judge alone (a time, a cursor, from after to). */
export class UsageRecordsInvalidQueryException extends DomainException {
  readonly code = 'USAGE_INVALID_QUERY';
  readonly status = HttpStatus.BAD_REQUEST;
}

/** A start-up error: another live process owns the usage journal folder. */
export class UsageJournalLockedException extends DomainException {
  readonly code = 'USAGE_JOURNAL_LOCKED';
  readonly status = HttpStatus.SERVICE_UNAVAILABLE;
}
