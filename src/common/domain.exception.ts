import { HttpStatus } from '@nestjs/common';

/**
 * Base of every domain error. Each module defines its own subclasses with a stable `code`
 * (e.g. `USAGE_TASK_NOT_FOUND`); the global filter maps them to HTTP with `status`.
 */
export abstract class DomainException extends Error {
  abstract readonly code: string;
  abstract readonly status: HttpStatus;
  constructor(
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
