import { Body, Controller, Get, HttpCode, HttpStatus, Param, ParseUUIDPipe, Post, Query } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBadRequestResponse, ApiBearerAuth, ApiConflictResponse, ApiForbiddenResponse, ApiNotFoundResponse, ApiOkResponse, ApiOperation, ApiParam, ApiTags, ApiServiceUnavailableResponse } from '@nestjs/swagger';
import { CurrentPrincipal } from '../auth/current-principal.decorator';
import { Principal } from '../auth/principal';
import { ListTasksQueryDto } from './dto/list-tasks-query.dto';
import { SubmitTaskDto, SubmitTaskResponseDto } from './dto/submit-task.dto';
import { CancelTaskResponseDto, TaskDto, TaskListDto } from './dto/task.dto';
import { TaskBadRequestException } from './tasks.exceptions';
import { TasksService } from './tasks.service';

export const taskIdPipe = new ParseUUIDPipe({
  exceptionFactory: () => new TaskBadRequestException('task_id must be a task id as returned by POST /api/v1/task/submit (a UUID)'),
});

@ApiTags('tasks')
@ApiBearerAuth()
@ApiServiceUnavailableResponse({ description: 'The database is not available right now (code DATABASE_UNAVAILABLE); retry after Retry-After seconds' })
@Controller('api/v1')
export class TasksController {
  constructor(private readonly tasks: TasksService) {}

  @Post('task/submit')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({ summary: 'Submit a bug-fix task', description: 'Queues the task; poll GET /api/v1/task/{task_id} for its progress.' })
  @ApiAcceptedResponse({ type: SubmitTaskResponseDto })
  @ApiBadRequestResponse({ description: 'A field is missing or malformed (the message names it)' })
  @ApiForbiddenResponse({
    description:
      'user_id names another user than the API key\'s, a user-scoped key names a repo_url kind only admin keys may use, ' +
      'or a user-scoped key submits while TASK_SANDBOX=none (TASK_SANDBOX_REQUIRED)',
  })
  submit(@Body() dto: SubmitTaskDto, @CurrentPrincipal() principal: Principal): Promise<SubmitTaskResponseDto> {
    return this.tasks.submit(dto, principal);
  }

  @Get('task/:task_id')
  @ApiOperation({ summary: 'Status, result and cost so far of a task' })
  @ApiParam({ name: 'task_id', format: 'uuid' })
  @ApiOkResponse({ type: TaskDto })
  @ApiNotFoundResponse({ description: 'No such task (or it belongs to another user)' })
  get(@Param('task_id', taskIdPipe) taskId: string, @CurrentPrincipal() principal: Principal): Promise<TaskDto> {
    return this.tasks.get(taskId, principal);
  }

  @Get('tasks')
  @ApiOperation({ summary: 'List tasks, newest first', description: 'Keyset pagination: pass next_cursor as ?cursor= for the next page.' })
  @ApiOkResponse({ type: TaskListDto })
  @ApiForbiddenResponse({ description: 'user_id names another user than the API key\'s' })
  list(@Query() query: ListTasksQueryDto, @CurrentPrincipal() principal: Principal): Promise<TaskListDto> {
    return this.tasks.list(query, principal);
  }

  @Post('task/:task_id/cancel')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({
    summary: 'Cancel a task',
    description:
      'A queued task is cancelled at once. A running task is aborted: the agent stops and its test command\'s process group is killed; ' +
      'the answer waits up to 5 s for that. A finished task answers 409.',
  })
  @ApiParam({ name: 'task_id', format: 'uuid' })
  @ApiAcceptedResponse({ type: CancelTaskResponseDto })
  @ApiNotFoundResponse({ description: 'No such task (or it belongs to another user)' })
  @ApiConflictResponse({ description: 'The task has already finished' })
  cancel(@Param('task_id', taskIdPipe) taskId: string, @CurrentPrincipal() principal: Principal): Promise<CancelTaskResponseDto> {
    return this.tasks.cancel(taskId, principal);
  }
}
