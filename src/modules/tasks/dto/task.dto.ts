import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { TASK_STATUSES, TaskStatus } from '../entities/task.entity';

export class TaskSummaryDto {
  @ApiProperty({ example: '0b8f5c2e-4f7a-4d55-9a55-2f1e7c9b1a10' })
  task_id: string;

  @ApiProperty({ enum: TASK_STATUSES })
  status: TaskStatus;

  @ApiProperty({ nullable: true, type: String, example: 'user-123' })
  user_id: string | null;

  @ApiProperty({ example: 'https://github.com/example/repo' })
  repo_url: string;

  @ApiProperty({ example: 'gpt-4o-mini' })
  model: string;

  @ApiProperty({ description: 'Name of the agent that runs the task', example: 'bug-fix' })
  agent: string;

  @ApiProperty({ description: 'Attempts started so far', example: 1 })
  attempts: number;

  @ApiProperty({ example: 3 })
  max_attempts: number;

  @ApiProperty({ description: 'Budget in USD', example: 1 })
  max_cost_usd: number;

  @ApiProperty({ description: 'Stage the agent is in while running (clone, model, apply, test, ...)', nullable: true, type: String })
  stage: string | null;

  @ApiProperty({
    description:
      'Why the task did not succeed: tests_failed, budget_exceeded, unpriced_model, cancelled, interrupted, agent_error, timeout, clone_failed, no_patch, ... (null while queued/running and on success)',
    nullable: true,
    type: String,
  })
  failure_reason: string | null;

  @ApiProperty({
    description: 'LLM cost of the task so far, USD (from the usage records; rounded to the nano-dollar). Calls to unpriced models add nothing: see unpriced_requests',
    example: 0.0123,
  })
  cost_usd: number;

  @ApiProperty({
    description: 'Same as cost_usd, exact decimal string; null when some calls had no known price (the cost is then not known exactly)',
    example: '0.012300000',
    nullable: true,
    type: String,
  })
  cost_usd_exact: string | null;

  @ApiProperty({ description: 'Model calls of the task whose model had no known price (their cost is unknown and left out of cost_usd)', example: 0 })
  unpriced_requests: number;

  @ApiProperty({ description: 'Why cost_usd is not the whole cost (unpriced calls), in words; null when it is', nullable: true, type: String })
  cost_note: string | null;

  @ApiProperty({ description: 'True once a cancel was requested', example: false })
  cancel_requested: boolean;

  @ApiProperty({ format: 'date-time' })
  created_at: string;

  @ApiProperty({ format: 'date-time', nullable: true, type: String })
  started_at: string | null;

  @ApiProperty({ format: 'date-time', nullable: true, type: String })
  finished_at: string | null;

  @ApiProperty({ description: 'Seconds from start to end (or to now while running); null while queued', nullable: true, type: Number })
  duration_seconds: number | null;

  @ApiProperty({ description: 'More detail on the failure, in words', nullable: true, type: String })
  failure_detail: string | null;
}

export class TaskDto extends TaskSummaryDto {
  @ApiProperty()
  bug_description: string;

  @ApiProperty()
  test_command: string;

  @ApiProperty({ description: 'The final (or latest tried) patch, as a unified diff', nullable: true, type: String })
  patch: string | null;

  @ApiProperty({ description: 'Tail of the latest test run output (capped)', nullable: true, type: String })
  test_output_tail: string | null;
}

export class TaskListDto {
  @ApiProperty({ type: [TaskSummaryDto] })
  tasks: TaskSummaryDto[];

  @ApiProperty({ description: 'Pass as ?cursor= for the next (older) page; null on the last page', nullable: true, type: String })
  next_cursor: string | null;
}

export class CancelTaskResponseDto {
  @ApiProperty()
  task_id: string;

  @ApiProperty({ enum: TASK_STATUSES, description: 'cancelled, or running when the task runs on another replica and has not stopped yet' })
  status: TaskStatus;

  @ApiProperty()
  cancel_requested: boolean;
}

export class UsageLimitsDto {
  @ApiProperty({ example: 'abc-123' })
  task_id: string;

  @ApiProperty({ example: true })
  within_limits: boolean;

  @ApiProperty({ example: 0.25 })
  current_cost_usd: number;

  @ApiProperty({ example: 5 })
  limit_usd: number;

  @ApiProperty({ example: 4.75 })
  remaining_usd: number;
}

export class TaskStatsDto {
  @ApiProperty({ example: 7 })
  period_days: number;

  @ApiProperty({ description: 'Tasks created in the window', example: 10 })
  total_tasks: number;

  @ApiProperty({ description: 'Tasks by status (every status present)', example: { queued: 0, running: 1, succeeded: 6, failed: 2, cancelled: 1 } })
  by_status: Record<TaskStatus, number>;

  @ApiProperty({ description: 'Failed tasks by failure_reason', example: { tests_failed: 1, budget_exceeded: 1 } })
  failure_reasons: Record<string, number>;

  @ApiProperty({ description: 'succeeded / (succeeded + failed) * 100; cancelled tasks are left out. 0 when none finished.', example: 75 })
  success_rate_percent: number;

  @ApiProperty({ description: 'Mean start-to-end seconds of finished tasks that started', example: 42.5 })
  avg_duration_seconds: number;

  @ApiProperty({ description: '95th percentile (nearest rank) of the same durations', example: 120.2 })
  p95_duration_seconds: number;

  @ApiProperty({ description: 'LLM cost of all tasks in the window, USD', example: 1.25 })
  total_cost_usd: number;

  @ApiProperty({ example: '1.250000000' })
  total_cost_usd_exact: string;

  @ApiProperty({ description: 'LLM cost of finished tasks / number of finished tasks, USD', example: 0.125 })
  avg_cost_per_task_usd: number;

  @ApiProperty({
    description: 'LLM cost of all finished tasks (failed ones included) / number of succeeded tasks, USD: what one success costs. 0 when none succeeded.',
    example: 0.2,
  })
  cost_per_successful_task_usd: number;
}
