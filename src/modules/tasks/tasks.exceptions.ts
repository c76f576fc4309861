import { HttpStatus } from '@nestjs/common';
import { DomainException } from '../../common/domain.exception';

export class TaskNotFoundException extends DomainException {
  readonly code = 'TASK_NOT_FOUND';
  readonly status = HttpStatus.NOT_FOUND;
  constructor(taskId: string) {
    super(`No task with id "${taskId}"`);
  }
}

export class TaskAlreadyFinishedException extends DomainException {
  readonly code = 'TASK_ALREADY_FINISHED';
  readonly status = HttpStatus.CONFLICT;
  constructor(taskId: string, status: string) {
    super(`Task "${taskId}" has already finished (status ${status}); only queued or running tasks can be cancelled`);
  }
}

export class TaskUserForbiddenException extends DomainException {
  readonly code = 'TASK_USER_FORBIDDEN';
  readonly status = HttpStatus.FORBIDDEN;
  constructor(message: string) {
    super(message);
  }
}

export class TaskBadRequestException extends DomainException {
  readonly code = 'TASK_BAD_REQUEST';
  readonly status = HttpStatus.BAD_REQUEST;
  constructor(message: string) {
    super(message);
  }
}

/** TASK_SANDBOX=none: test commands would run unconfined, so only admins may submit tasks. */
export class TaskSandboxRequiredException extends DomainException {
  readonly code = 'TASK_SANDBOX_REQUIRED';
  readonly status = HttpStatus.FORBIDDEN;
  constructor() {
    super(
      'This service runs test commands without a sandbox (TASK_SANDBOX=none), so user-scoped API keys may not submit tasks: ' +
        'a task\'s test command could read the service\'s secrets and data. Submit with an admin key, or ask the operator to enable TASK_SANDBOX=bwrap.',
    );
  }
}

/** The task's model has no known price, so its budget could not be enforced (LLM_UNPRICED_UNDER_BUDGET=refuse). */
export class TaskUnpricedModelException extends DomainException {
  readonly code = 'TASK_UNPRICED_MODEL';
  readonly status = HttpStatus.BAD_REQUEST;
  constructor(message: string) {
    super(message);
  }
}
