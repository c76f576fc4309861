import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { QueryNumber } from '../../../common/query-number';
import { TASK_ID_PATTERN, USER_ID_PATTERN, UsageWindowQueryDto } from './usage-query.dto';

export const USAGE_STATUSES = ['success', 'error'] as const;
export const MAX_RECORDS_LIMIT = 500;
const TIME_MESSAGE = (name: string) => `${name} must be an ISO 8601 timestamp with a time zone (2026-11-25T10:00:00Z) or a UTC date (2026-11-25)`;

export class UsageRecordsQueryDto {
  @ApiPropertyOptional({ description: 'Only calls of this user (a user-scope key may name only its own user)', example: 'user-123' })
  @IsOptional()
  @Matches(USER_ID_PATTERN, { message: 'user_id must be 1-100 characters of letters, digits and . _ : @ -' })
  user_id?: string;

  @ApiPropertyOptional({ description: 'Only calls of this task', example: 'abc-123' })
  @IsOptional()
  @Matches(TASK_ID_PATTERN, { message: 'task_id must be 1-64 characters of letters, digits and . _ : -' })
  task_id?: string;

  @ApiPropertyOptional({ description: 'Only calls that asked for this model', example: 'gpt-4o-mini' })
  @IsOptional()
  @IsString({ message: 'model must be a model name' })
  @Matches(/^[^\s]{1,128}$/, { message: 'model must be a model name of 1-128 characters without spaces' })
  model?: string;

  @ApiPropertyOptional({ enum: USAGE_STATUSES, description: 'Only successful or only failed calls' })
  @IsOptional()
  @IsIn(USAGE_STATUSES, { message: `status must be one of: ${USAGE_STATUSES.join(', ')}` })
  status?: (typeof USAGE_STATUSES)[number];

  @ApiPropertyOptional({ description: 'Start (inclusive): an ISO 8601 timestamp with Z or an offset, or a date (UTC midnight)', example: '2026-11-25T00:00:00Z' })
  @IsOptional()
  @IsString({ message: TIME_MESSAGE('from') })
  @MaxLength(40, { message: TIME_MESSAGE('from') })
  from?: string;

  @ApiPropertyOptional({ description: 'End (exclusive), same forms as from; default: now', example: '2026-11-26T00:00:00Z' })
  @IsOptional()
  @IsString({ message: TIME_MESSAGE('to') })
  @MaxLength(40, { message: TIME_MESSAGE('to') })
  to?: string;

  @ApiPropertyOptional({ default: 50, minimum: 1, maximum: MAX_RECORDS_LIMIT, description: 'Records per page' })
  @IsOptional()
  @QueryNumber({ integer: true, message: `limit must be a whole number from 1 to ${MAX_RECORDS_LIMIT}` })
  @Min(1, { message: `limit must be a whole number from 1 to ${MAX_RECORDS_LIMIT}` })
  @Max(MAX_RECORDS_LIMIT, { message: `limit must be a whole number from 1 to ${MAX_RECORDS_LIMIT}` })
  limit?: number;

  @ApiPropertyOptional({ description: 'next_cursor of the previous page, unchanged' })
  @IsOptional()
  @IsString({ message: 'cursor must be the next_cursor of a previous page' })
  @MaxLength(200, { message: 'cursor must be the next_cursor of a previous page' })
  cursor?: string;
}

/** The window of the latency percentiles: the same `days` as the other usage endpoints. */
export class UsageLatencyQueryDto extends UsageWindowQueryDto {}
