import { ApiProperty, getSchemaPath } from '@nestjs/swagger';

const EXACT = 'Exact decimal string with 9 decimals (integer nano-dollars summed in SQL)';

/** Token and request counts shared by totals and groups. */
export class UsageCountsDto {
  @ApiProperty({ description: 'Prompt tokens, including cached ones', example: 4000 })
  input_tokens: number;
  @ApiProperty({ description: 'Completion tokens, including reasoning tokens', example: 1000 })
  output_tokens: number;
  @ApiProperty({ description: 'Part of input_tokens read from the provider prompt cache', example: 0 })
  cached_input_tokens: number;
  @ApiProperty({ description: 'Part of input_tokens written to the provider prompt cache', example: 0 })
  cache_write_tokens: number;
  @ApiProperty({ description: 'Part of output_tokens spent on hidden reasoning', example: 0 })
  reasoning_tokens: number;
  @ApiProperty({ description: 'LLM calls that failed (status error)', example: 0 })
  failed_requests: number;
  @ApiProperty({ description: 'Calls whose model had no known price: their cost is NOT in the totals', example: 0 })
  unpriced_requests: number;
  @ApiProperty({ description: 'Calls whose token counts were estimated locally (the provider reported none)', example: 0 })
  estimated_requests: number;
}

/** One group of a breakdown (`by_model`, `by_user`, a timeseries bucket group). */
export class UsageBreakdownDto extends UsageCountsDto {
  @ApiProperty({ example: 2 })
  requests: number;
  @ApiProperty({ description: 'Total tokens as reported per call (input + output)', example: 5000 })
  tokens: number;
  @ApiProperty({ description: 'USD, rounded to the nano-dollar', example: 0.25 })
  cost_usd: number;
  @ApiProperty({ description: EXACT, example: '0.250000000' })
  cost_usd_exact: string;
  @ApiProperty({ required: false, description: 'Only on the "(others)" entry of by_user: how many users it adds up', example: 900 })
  users?: number;
}

export class UsageTotalsDto extends UsageCountsDto {
  @ApiProperty({ example: 2 })
  total_requests: number;
  @ApiProperty({ example: 5000 })
  total_tokens: number;
  @ApiProperty({ description: 'USD, the exact total rounded to the nano-dollar', example: 0.25 })
  total_cost_usd: number;
  @ApiProperty({ description: EXACT, example: '0.250000000' })
  total_cost_usd_exact: string;
  @ApiProperty({ description: 'Mean latency of the calls (failed ones included), ms; 0 without calls', example: 1200.0 })
  avg_latency_ms: number;
}

const groupMap = (description: string) =>
  ApiProperty({ description, type: 'object', additionalProperties: { $ref: getSchemaPath(UsageBreakdownDto) } });

export class WindowDto extends UsageTotalsDto {
  @ApiProperty({ example: 7 })
  days: number;
  @ApiProperty({ description: 'Start of the window (now - days x 24 h), ISO 8601 UTC', example: '2026-01-01T12:00:00.000Z' })
  from: string;
  @ApiProperty({ description: 'End of the window (the time of the request), ISO 8601 UTC', example: '2026-01-08T12:00:00.000Z' })
  to: string;
}

export class TaskUsageDto extends UsageTotalsDto {
  @ApiProperty({ example: 'abc-123' })
  task_id: string;
  @groupMap('Per requested model')
  by_model: Record<string, UsageBreakdownDto>;
}

export class OverallUsageDto extends WindowDto {
  @ApiProperty({
    description:
      'Task success rate, percent: succeeded / (succeeded + failed) tasks created in the window (cancelled ones left out). ' +
      'Without finished tasks in the window: the share of LLM calls that succeeded (0 without calls).',
    example: 98.5,
  })
  success_rate_percent: number;
  @groupMap('Per requested model')
  by_model: Record<string, UsageBreakdownDto>;
  @groupMap(
    'Per user id, the top_users most expensive ones (cost descending, then user id); calls without a user are under "(none)"; ' +
      'the remaining users added up under "(others)" with their count in `users`. The full list: GET /api/v1/usage/users',
  )
  by_user: Record<string, UsageBreakdownDto>;
}

export class UserUsageDto extends WindowDto {
  @ApiProperty({ example: 'user-123' })
  user_id: string;
  @ApiProperty({ description: 'Share of this user\'s LLM calls that succeeded, percent (0 without calls)', example: 100 })
  success_rate_percent: number;
  @groupMap('Per requested model')
  by_model: Record<string, UsageBreakdownDto>;
}

export class UserListEntryDto extends UsageBreakdownDto {
  @ApiProperty({ description: 'User id; "(none)" for calls without a user', example: 'user-123' })
  user_id: string;
}

export class UserListDto {
  @ApiProperty({ example: 7 })
  days: number;
  @ApiProperty({ description: 'Start of the window, ISO 8601 UTC', example: '2026-01-01T12:00:00.000Z' })
  from: string;
  @ApiProperty({ description: 'End of the window: the time of the first page\'s request (later pages keep it)', example: '2026-01-08T12:00:00.000Z' })
  to: string;
  @ApiProperty({ type: [UserListEntryDto], description: 'Users with calls in the window, cost descending, then user id ascending' })
  users: UserListEntryDto[];
  @ApiProperty({ description: 'Users in the whole list (all pages)', example: 1000 })
  total_users: number;
  @ApiProperty({ type: String, nullable: true, description: 'Pass as cursor (with the same days) for the next page; null on the last page' })
  next_cursor: string | null;
}

export class TimeseriesBucketDto extends UsageBreakdownDto {
  @ApiProperty({ description: 'Start of the bucket, ISO 8601 UTC (on an hour or UTC-midnight boundary)', example: '2026-01-07T00:00:00.000Z' })
  start: string;
  @groupMap('Per model or per user (see group_by)')
  groups: Record<string, UsageBreakdownDto>;
}

export class TimeseriesDto extends WindowDto {
  @ApiProperty({ enum: ['hour', 'day'] })
  interval: 'hour' | 'day';
  @ApiProperty({ enum: ['model', 'user'] })
  group_by: 'model' | 'user';
  @ApiProperty({ type: [TimeseriesBucketDto], description: 'Buckets that have calls, oldest first (empty buckets are left out)' })
  buckets: TimeseriesBucketDto[];
}

export class ErrorResponseDto {
  @ApiProperty({ example: 400 })
  statusCode: number;
  @ApiProperty({ example: 'Bad Request' })
  error: string;
  @ApiProperty({ example: 'days must be at least 1' })
  message: string;
  @ApiProperty({ required: false, type: [String], description: 'Per-field problems of a validation error' })
  errors?: string[];
  @ApiProperty({ required: false, description: 'Stable error code of domain errors', example: 'USAGE_TASK_NOT_FOUND' })
  code?: string;
  @ApiProperty({ required: false, description: 'On 5xx answers: the id of the server log line', format: 'uuid' })
  errorId?: string;
}
