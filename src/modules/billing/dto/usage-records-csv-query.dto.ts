import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { TASK_ID_PATTERN, USER_ID_PATTERN } from '../../usage/dto/usage-query.dto';

export class UsageRecordsCsvQueryDto {
  @ApiPropertyOptional({ description: 'Start (inclusive): a date (midnight in BILLING_TIMEZONE) or an ISO 8601 timestamp; default: the first record' })
  @IsOptional()
  @IsString({ message: 'from must be an ISO 8601 date (2026-11-25) or timestamp (2026-11-25T00:00:00Z)' })
  @MaxLength(40, { message: 'from must be an ISO 8601 date (2026-11-25) or timestamp (2026-11-25T00:00:00Z)' })
  from?: string;

  @ApiPropertyOptional({ description: 'End (exclusive): a date (midnight in BILLING_TIMEZONE) or an ISO 8601 timestamp; default: now' })
  @IsOptional()
  @IsString({ message: 'to must be an ISO 8601 date (2026-11-26) or timestamp (2026-11-26T00:00:00Z)' })
  @MaxLength(40, { message: 'to must be an ISO 8601 date (2026-11-26) or timestamp (2026-11-26T00:00:00Z)' })
  to?: string;

  @ApiPropertyOptional({ description: 'Only calls of this user (a user-scope key may name only its own user)' })
  @IsOptional()
  @Matches(USER_ID_PATTERN, { message: 'user_id must be 1-100 characters of letters, digits and . _ : @ -' })
  user_id?: string;

  @ApiPropertyOptional({ description: 'Only calls to this requested model' })
  @IsOptional()
  @IsString({ message: 'model must be a model name' })
  @Matches(/^[^\s]{1,128}$/, { message: 'model must be a model name of 1-128 characters without spaces' })
  model?: string;

  @ApiPropertyOptional({ description: 'Only calls of this task' })
  @IsOptional()
  @Matches(TASK_ID_PATTERN, { message: 'task_id must be 1-64 characters of letters, digits and . _ : -' })
  task_id?: string;
}
