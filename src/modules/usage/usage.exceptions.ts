import { HttpStatus } from '@nestjs/common';
import { DomainException } from '../../common/domain.exception';

export class UsageTaskNotFoundException extends DomainException {
  readonly code = 'USAGE_TASK_NOT_FOUND';
  readonly status = HttpStatus.NOT_FOUND;
  constructor(taskId: string) {
    super(`No LLM usage recorded for task "${taskId}": check the task id (usage appears once the task has made an LLM call)`);
  }
}

export class UsageAccessDeniedException extends DomainException {
  readonly code = 'USAGE_ACCESS_DENIED';
  readonly status = HttpStatus.FORBIDDEN;
  constructor(what: string) {
    super(`This API key may only read its own user's usage, not ${what}`);
  }
}
