import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { QueryNumber } from '../../../common/query-number';
import { TASK_STATUSES, TaskStatus } from '../entities/task.entity';
import { USER_ID_PATTERN } from '../../auth/api-key-file';
import { USER_ID_MESSAGE } from './submit-task.dto';

export class ListTasksQueryDto {
  @ApiPropertyOptional({ enum: TASK_STATUSES })
  @IsOptional() @IsIn(TASK_STATUSES, { message: `status must be one of: ${TASK_STATUSES.join(', ')}` })
  status?: TaskStatus;

  @ApiPropertyOptional({ description: 'Only this user\'s tasks (user-scoped keys always see only their own).' })
  @IsOptional() @IsString() @Matches(USER_ID_PATTERN, { message: USER_ID_MESSAGE })
  user_id?: string;

  @ApiPropertyOptional({ default: 20, minimum: 1, maximum: 100 })
  @IsOptional() @QueryNumber({ integer: true, message: 'limit must be an integer from 1 to 100' }) @Min(1) @Max(100)
  limit?: number;

  @ApiPropertyOptional({ description: 'next_cursor of the previous page' })
  @IsOptional() @IsString() @MaxLength(200)
  cursor?: string;
}

export class TaskStatsQueryDto {
  @ApiPropertyOptional({ description: 'Window in days, counted back from now (tasks created in it).', default: 7, minimum: 1, maximum: 3650 })
  @IsOptional() @QueryNumber({ integer: true, message: 'days must be an integer from 1 to 3650' }) @Min(1) @Max(3650)
  days?: number;

  @ApiPropertyOptional({ description: 'Only this user\'s tasks (user-scoped keys always see only their own).' })
  @IsOptional() @IsString() @Matches(USER_ID_PATTERN, { message: USER_ID_MESSAGE })
  user_id?: string;
}

export class UsageLimitsQueryDto {
  @ApiPropertyOptional({ description: 'Limit in USD to check against (default: the task\'s own max_cost_usd).', example: 5 })
  @IsOptional() @QueryNumber({ message: 'max_cost_usd must be a number of USD' }) @Min(0)
  max_cost_usd?: number;
}
