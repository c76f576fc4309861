import { BadRequestException } from '@nestjs/common';
import type { ValidationError } from 'class-validator';
import { QUERY_NUMBER } from './query-number';

/**
 * Constraints that say what kind of value is expected. When one of them fails, the range and
 * length rules of the same field are noise ("days must be at most 3650" for `days=abc`), so only
 * the kind is reported.
 */
const KIND_CHECKS = new Set([
  'isDefined',
  'isNotEmpty',
  'isInt',
  'isNumber',
  'isBoolean',
  'isString',
  'isUrl',
  'isUuid',
  'isIn',
  'isEnum',
  'matches',
  'whitelistValidation',
  QUERY_NUMBER,
]);

/** The messages worth showing for one field's failed constraints. */
export function relevantMessages(constraints: Record<string, string> = {}): string[] {
  const entries = Object.entries(constraints);
  const kind = entries.filter(([name]) => KIND_CHECKS.has(name));
  return (kind.length > 0 ? kind : entries).map(([, message]) => message);
}

/** Every field problem of a validation run, nested objects included, one message each. */
export function validationMessages(errors: ValidationError[], prefix = ''): string[] {
  return errors.flatMap((e) => [
    ...relevantMessages(e.constraints).map((m) => (prefix ? `${prefix}${m}` : m)),
    ...validationMessages(e.children ?? [], `${prefix}${e.property}.`),
  ]);
}

/** For the global ValidationPipe: a 400 whose message names each bad field once. */
export function validationExceptionFactory(errors: ValidationError[]): BadRequestException {
  return new BadRequestException(validationMessages(errors));
}
