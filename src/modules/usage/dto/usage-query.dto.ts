import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  IsIn,
  IsOptional,
  Matches,
  Max,
  Min,
  registerDecorator,
  ValidationArguments,
} from 'class-validator';
import { QueryNumber } from '../../../common/query-number';
import { parseUsageTags, TAGS_RULES } from '../../../common/usage-tags';

/** A `?tags=` value: the same `key=value,...` form as the gateway's `x-asa-tags` header. */
function IsUsageTagsFilter() {
  return (target: object, propertyName: string) =>
    registerDecorator({
      name: 'isUsageTagsFilter',
      target: target.constructor,
      propertyName,
      validator: {
        validate: (value: unknown) => {
          if (typeof value !== 'string') return false;
          try {
            parseUsageTags(value);
            return true;
          } catch {
            return false;
          }
        },
        defaultMessage: (args?: ValidationArguments) => {
          if (typeof args?.value !== 'string') return 'tags must be given once, as key=value pairs separated by commas';
          try {
            parseUsageTags(args.value);
            return '';
          } catch (err) {
            return `tags: ${(err as Error).message}`;
          }
        },
      },
    });
}

export const MAX_DAYS = 3650;
/** Hourly buckets over more than this many days would be a response of hundreds of thousands of points. */
export const MAX_DAYS_HOURLY = 92;

export const TASK_ID_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;
// 100, not the column's 128: Fastify answers longer path parameters with 414 before any validation.
export const USER_ID_PATTERN = /^[A-Za-z0-9._:@-]{1,100}$/;

/** No query parameters allowed (with forbidNonWhitelisted, any parameter is a 400). */
export class NoQueryDto {}

export class TaskIdParamDto {
  @ApiProperty({ description: 'Task id (1-64 characters: letters, digits, . _ : -)', example: 'abc-123' })
  @Matches(TASK_ID_PATTERN, { message: 'task_id must be 1-64 characters of letters, digits and . _ : -' })
  task_id: string;
}

export class UserIdParamDto {
  @ApiProperty({ description: 'User id (1-100 characters: letters, digits, . _ : @ -)', example: 'user-123' })
  @Matches(USER_ID_PATTERN, { message: 'user_id must be 1-100 characters of letters, digits and . _ : @ -' })
  user_id: string;
}

export class UsageWindowQueryDto {
  @ApiPropertyOptional({
    description: 'Window: the last N days up to now (N x 24 h, not calendar days)',
    minimum: 1,
    maximum: MAX_DAYS,
    default: 7,
  })
  @IsOptional()
  @QueryNumber({ integer: true, message: 'days must be a whole number of days' })
  @Min(1, { message: 'days must be at least 1' })
  @Max(MAX_DAYS, { message: `days must be at most ${MAX_DAYS}` })
  days: number = 7;

  @ApiPropertyOptional({
    description: `Only calls carrying all these tags (set by the gateway's x-asa-tags header): ${TAGS_RULES}`,
    example: 'team=search,env=prod',
  })
  @IsOptional()
  @IsUsageTagsFilter()
  tags?: string;
}

export class TimeseriesQueryDto extends UsageWindowQueryDto {
  @ApiPropertyOptional({ enum: ['hour', 'day'], default: 'day', description: 'Bucket width; buckets start on UTC hour/day boundaries' })
  @IsOptional()
  @IsIn(['hour', 'day'], { message: 'interval must be hour or day' })
  interval: 'hour' | 'day' = 'day';

  @ApiPropertyOptional({ enum: ['model', 'user'], default: 'model', description: 'What each bucket is broken down by' })
  @IsOptional()
  @IsIn(['model', 'user'], { message: 'group_by must be model or user' })
  group_by: 'model' | 'user' = 'model';
}

// Registered on `interval`, not on `days`: class-validator drops the inherited rules of a property
// that a subclass registers again, which would leave `days` unchecked here. The message still
// names `days`, the parameter to change.
registerDecorator({
  name: 'maxDaysForHourly',
  target: TimeseriesQueryDto,
  propertyName: 'interval',
  validator: {
    validate: (interval: unknown, args: ValidationArguments) => {
      const days = (args.object as TimeseriesQueryDto).days;
      return interval !== 'hour' || typeof days !== 'number' || !(days > MAX_DAYS_HOURLY);
    },
    defaultMessage: () => `days must be at most ${MAX_DAYS_HOURLY} with interval=hour (use interval=day for longer windows)`,
  },
});
