import { applyDecorators } from '@nestjs/common';
import { Transform } from 'class-transformer';
import { ValidateBy, ValidationArguments } from 'class-validator';

/** Name of the constraint, listed with the "kind" checks in validation-messages.ts. */
export const QUERY_NUMBER = 'queryNumber';

/** What a query value that is not a plain decimal number becomes, so the validator can name it. */
class RejectedQueryValue {
  constructor(readonly raw: unknown) {}
}

const INTEGER = /^-?(0|[1-9]\d*)$/;
const DECIMAL = /^-?(0|[1-9]\d*)(\.\d+)?$/;

/**
 * A number in a query string, written in plain decimal digits: `7`, `0.5`, `-1`. `Number()` (and
 * `@Type(() => Number)`) would also read `0x10` as 16, `0b11`, `0o7`, `1e2`, ` 7 ` and `''` (as 0);
 * here each is a 400 naming the parameter. Range rules (`@Min`, `@Max`) go beside it.
 *
 * @param message what is expected, naming the parameter: "days must be a whole number of days"
 */
export function QueryNumber(opts: { integer?: boolean; message: string }): PropertyDecorator {
  const pattern = opts.integer ? INTEGER : DECIMAL;
  return applyDecorators(
    Transform(({ value }) => {
      if (value === undefined || value === null || typeof value === 'number') return value;
      return typeof value === 'string' && pattern.test(value) ? Number(value) : new RejectedQueryValue(value);
    }),
    ValidateBy({
      name: QUERY_NUMBER,
      validator: {
        validate: (value: unknown) => typeof value === 'number' && Number.isFinite(value) && (!opts.integer || Number.isSafeInteger(value)),
        defaultMessage: (args?: ValidationArguments) => {
          const raw = args?.value instanceof RejectedQueryValue ? args.value.raw : args?.value;
          if (Array.isArray(raw)) return `${args?.property} must be given once`;
          if (raw === '') return `${args?.property} must not be empty: give it a value or leave the parameter out`;
          const digits = opts.integer ? 'decimal digits' : 'decimal digits with an optional fraction';
          return `${opts.message}, written in ${digits} (got ${JSON.stringify(String(raw)).slice(0, 60)})`;
        },
      },
    }),
  );
}
