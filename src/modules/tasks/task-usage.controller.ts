import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBearerAuth, ApiForbiddenResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiTags, ApiServiceUnavailableResponse } from '@nestjs/swagger';
import { CurrentPrincipal } from '../auth/current-principal.decorator';
import { Principal } from '../auth/principal';
import { TaskIdParamDto } from '../usage/dto/usage-query.dto';
import { TaskStatsQueryDto, UsageLimitsQueryDto } from './dto/list-tasks-query.dto';
import { TaskStatsDto, UsageLimitsDto } from './dto/task.dto';
import { TaskStatsService } from './task-stats.service';
import { TaskUserForbiddenException } from './tasks.exceptions';
import { TasksService } from './tasks.service';

/** Task-related routes under /api/v1/usage (the rest of /usage belongs to the usage module). */
@ApiTags('usage')
@ApiBearerAuth()
@ApiServiceUnavailableResponse({ description: 'The database is not available right now (code DATABASE_UNAVAILABLE); retry after Retry-After seconds' })
@Controller('api/v1/usage')
export class TaskUsageController {
  constructor(
    private readonly tasks: TasksService,
    private readonly stats: TaskStatsService,
  ) {}

  @Get('task/:task_id/limits')
  @ApiOperation({
    summary: 'check_usage_limits for a task',
    description: 'LLM cost of the task so far against max_cost_usd (default: the task\'s own budget).',
  })
  @ApiOkResponse({ type: UsageLimitsDto })
  @ApiBadRequestResponse({ description: 'max_cost_usd is malformed, or missing for a task id that is not a task of this service' })
  @ApiNotFoundResponse({ description: 'No such task (or it belongs to another user)' })
  limits(@Param() { task_id: taskId }: TaskIdParamDto, @Query() query: UsageLimitsQueryDto, @CurrentPrincipal() principal: Principal): Promise<UsageLimitsDto> {
    return this.tasks.limits(taskId, query, principal);
  }

  @Get('metrics/tasks')
  @ApiOperation({
    summary: 'Task execution metrics',
    description: 'Counts by status, success rate, duration (avg, p95) and cost per task over tasks created in the last `days` days.',
  })
  @ApiOkResponse({ type: TaskStatsDto })
  @ApiForbiddenResponse({ description: 'user_id names another user than the API key\'s' })
  metrics(@Query() query: TaskStatsQueryDto, @CurrentPrincipal() principal: Principal): Promise<TaskStatsDto> {
    let userId = query.user_id;
    if (principal.scope === 'user') {
      if (userId !== undefined && userId !== principal.userId) {
        throw new TaskUserForbiddenException(`This API key may only see the task metrics of user "${principal.userId}"`);
      }
      userId = principal.userId ?? undefined;
    }
    return this.stats.stats({ days: query.days ?? 7, userId });
  }
}
