import { Inject, Injectable } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { randomUUID } from 'node:crypto';
import { llmConfig } from '../../config/llm.config';
import { tasksConfig } from '../../config/tasks.config';
import { TASK_AGENTS, TaskAgent } from '../../plugins/sdk';
import { canAccessUser, Principal } from '../auth/principal';
import { LlmClientFactory } from '../llm/llm-client.factory';
import { PricingService } from '../llm/pricing/pricing.service';
import { TaskMetricsService } from '../metrics/task-metrics.service';
import { ListTasksQueryDto, UsageLimitsQueryDto } from './dto/list-tasks-query.dto';
import { SubmitTaskDto, SubmitTaskResponseDto } from './dto/submit-task.dto';
import { CancelTaskResponseDto, TaskDto, TaskListDto, TaskSummaryDto, UsageLimitsDto } from './dto/task.dto';
import { FINAL_TASK_STATUSES, Task } from './entities/task.entity';
import { nanosToUsd, nanosToUsdExact, usdToNanos } from '../../common/money';
import { RepoSourcePolicy } from './repo-source/repo-source.policy';
import { decodeKeysetCursor, encodeKeysetCursor } from '../../common/keyset-cursor';
import { TaskRunner } from './task-runner.service';
import { TaskStore } from './task-store.service';
import {
  TaskAlreadyFinishedException,
  TaskBadRequestException,
  TaskNotFoundException,
  TaskSandboxRequiredException,
  TaskUnpricedModelException,
  TaskUserForbiddenException,
} from './tasks.exceptions';

/** How long a cancel of a task running in this process waits for it to stop before answering. */
const CANCEL_WAIT_MS = 5_000;
/** How long a read of a just-finished task waits for this process's bookkeeping of it (microseconds, normally). */
const SETTLE_WAIT_MS = 1_000;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** The task API: submit, read, list, cancel, and the task's budget check. */
@Injectable()
export class TasksService {
  constructor(
    private readonly store: TaskStore,
    private readonly runner: TaskRunner,
    private readonly llm: LlmClientFactory,
    private readonly metrics: TaskMetricsService,
    private readonly repoSources: RepoSourcePolicy,
    @Inject(TASK_AGENTS) private readonly agents: TaskAgent[],
    @Inject(tasksConfig.KEY) private readonly config: ConfigType<typeof tasksConfig>,
    private readonly pricing: PricingService,
    @Inject(llmConfig.KEY) private readonly llmSettings: Pick<ConfigType<typeof llmConfig>, 'unpricedUnderBudget'>,
  ) {}

  async submit(dto: SubmitTaskDto, principal: Principal): Promise<SubmitTaskResponseDto> {
    if (this.config.sandbox === 'none' && principal.scope === 'user') throw new TaskSandboxRequiredException();
    await this.repoSources.checkSubmit(dto.repo_url, principal);
    const userId = this.ownerFor(principal, dto.user_id);
    const maxCostNanos = usdToNanos(dto.max_cost_usd ?? this.config.defaultMaxCostUsd);
    if (maxCostNanos === null) throw new TaskBadRequestException('max_cost_usd must be a non-negative number of USD');
    const agent = dto.agent === undefined ? this.agents[0] : this.agents.find((a) => a.name === dto.agent);
    if (!agent) {
      throw new TaskBadRequestException(`agent must be one of the registered task agents (${this.agents.map((a) => a.name).join(', ')}); there is none named "${dto.agent}"`);
    }
    const model = dto.model ?? this.config.defaultModel;
    // Every task has a budget, and a model without a price would pass it unchecked: say so now
    // rather than failing the task at its first model call.
    if (this.llmSettings.unpricedUnderBudget !== 'allow' && this.pricing.resolve(model) === null) {
      throw new TaskUnpricedModelException(
        `model: ${this.pricing.unpricedHint(model)}, so the task's budget could not be enforced; ` +
          'or set LLM_UNPRICED_UNDER_BUDGET=allow to run tasks on models of unknown cost',
      );
    }
    const task: Task = {
      id: randomUUID(),
      status: 'queued',
      userId,
      repoUrl: dto.repo_url,
      bugDescription: dto.bug_description,
      testCommand: dto.test_command,
      model,
      maxCostNanos: Number(maxCostNanos),
      maxAttempts: dto.max_attempts ?? 3,
      agent: agent.name,
      attempts: 0,
      stage: null,
      failureReason: null,
      failureDetail: null,
      patch: null,
      testOutputTail: null,
      cancelRequested: false,
      workerId: null,
      heartbeatAtMs: null,
      createdAtMs: Date.now(),
      startedAtMs: null,
      finishedAtMs: null,
    };
    await this.store.insert(task);
    this.runner.wake();
    return { task_id: task.id, status: 'queued' };
  }

  async get(taskId: string, principal: Principal): Promise<TaskDto> {
    const task = await this.visibleTask(taskId, principal);
    if (FINAL_TASK_STATUSES.includes(task.status)) await this.runner.settled(task.id, SETTLE_WAIT_MS);
    const costs = await this.store.costsOf([task.id]);
    return this.toDto(task, costs.get(task.id) ?? 0n);
  }

  async list(query: ListTasksQueryDto, principal: Principal): Promise<TaskListDto> {
    let userId = query.user_id;
    if (principal.scope === 'user') {
      if (userId !== undefined && userId !== principal.userId) {
        throw new TaskUserForbiddenException(`This API key may only list the tasks of user "${principal.userId}"`);
      }
      userId = principal.userId ?? undefined;
    }
    let after = null;
    if (query.cursor !== undefined) {
      after = decodeKeysetCursor(query.cursor);
      if (!after) throw new TaskBadRequestException('cursor is not valid: pass the next_cursor of a previous page unchanged');
    }
    const limit = query.limit ?? 20;
    const rows = await this.store.list({ status: query.status, userId, limit, after });
    const page = rows.slice(0, limit);
    const costs = await this.store.costsOf(page.map((t) => t.id));
    const last = page[page.length - 1];
    return {
      tasks: page.map((t) => this.toSummary(t, costs.get(t.id) ?? 0n)),
      next_cursor: rows.length > limit && last ? encodeKeysetCursor({ ms: last.createdAtMs, id: last.id }) : null,
    };
  }

  /**
   * queued -> cancelled at once; running -> the agent's signal is aborted (it kills its test
   * process group) and the answer waits briefly for it to stop; finished -> 409.
   */
  async cancel(taskId: string, principal: Principal): Promise<CancelTaskResponseDto> {
    const task = await this.visibleTask(taskId, principal);
    if (FINAL_TASK_STATUSES.includes(task.status)) throw new TaskAlreadyFinishedException(task.id, task.status);
    if (task.status === 'queued' && (await this.store.cancelQueued(task.id, Date.now()))) {
      this.metrics.taskFinished('cancelled', 0);
      return { task_id: task.id, status: 'cancelled', cancel_requested: true };
    }
    // Running (possibly claimed a moment ago). Here: abort now. On another replica: its heartbeat sees the flag.
    if (await this.store.requestCancel(task.id)) {
      await this.runner.abortLocal(task.id, 'cancelled', CANCEL_WAIT_MS);
      const now = (await this.store.findById(task.id)) ?? task;
      return { task_id: task.id, status: now.status, cancel_requested: true };
    }
    const now = await this.store.findById(task.id);
    throw new TaskAlreadyFinishedException(task.id, now?.status ?? 'unknown');
  }

  /** check_usage_limits for a task: its LLM cost so far against `max_cost_usd` (default: the task's budget). */
  async limits(taskId: string, query: UsageLimitsQueryDto, principal: Principal): Promise<UsageLimitsDto> {
    const task = await this.store.findById(taskId);
    if (task && !canAccessUser(principal, task.userId)) throw new TaskNotFoundException(taskId);
    if (!task) {
      // Usage recorded under a task id by other callers (not a task of this service): admins only, with a limit.
      if (principal.scope !== 'admin') throw new TaskNotFoundException(taskId);
      if (query.max_cost_usd === undefined) {
        throw new TaskBadRequestException(`max_cost_usd is required: "${taskId}" is not a task of this service, so it has no budget of its own`);
      }
    }
    const limitUsd = query.max_cost_usd ?? (task ? task.maxCostNanos / 1e9 : 0);
    const client = this.llm.forTask(taskId, { userId: task?.userId ?? null, maxCostUsd: limitUsd });
    const r = await client.checkUsageLimits({ maxCostPerTask: limitUsd });
    return { task_id: taskId, ...r };
  }

  /** Owner of a new task: the key's user for user-scoped keys (403 when the body names another). */
  private ownerFor(principal: Principal, requested: string | undefined): string | null {
    if (principal.scope === 'user') {
      if (requested !== undefined && requested !== principal.userId) {
        throw new TaskUserForbiddenException(`This API key belongs to user "${principal.userId}" and cannot submit tasks for user "${requested}"`);
      }
      return principal.userId;
    }
    return requested ?? null;
  }

  /** A task the principal may see; another user's task is reported as not found. */
  private async visibleTask(taskId: string, principal: Principal): Promise<Task> {
    const task = await this.store.findById(taskId);
    if (!task || !canAccessUser(principal, task.userId)) throw new TaskNotFoundException(taskId);
    return task;
  }

  private toSummary(t: Task, costNanos: bigint): TaskSummaryDto {
    const end = t.finishedAtMs ?? (t.status === 'running' ? Date.now() : null);
    return {
      task_id: t.id,
      status: t.status,
      user_id: t.userId,
      repo_url: t.repoUrl,
      model: t.model,
      agent: t.agent,
      attempts: t.attempts,
      max_attempts: t.maxAttempts,
      max_cost_usd: nanosToUsd(BigInt(t.maxCostNanos)),
      stage: t.stage,
      failure_reason: t.failureReason,
      cost_usd: nanosToUsd(costNanos),
      cost_usd_exact: nanosToUsdExact(costNanos),
      cancel_requested: t.cancelRequested,
      created_at: iso(t.createdAtMs) as string,
      started_at: iso(t.startedAtMs),
      finished_at: iso(t.finishedAtMs),
      duration_seconds: t.startedAtMs !== null && end !== null ? Math.max(0, end - t.startedAtMs) / 1000 : null,
    };
  }

  private toDto(t: Task, costNanos: bigint): TaskDto {
    return {
      ...this.toSummary(t, costNanos),
      bug_description: t.bugDescription,
      test_command: t.testCommand,
      failure_detail: t.failureDetail,
      patch: t.patch,
      test_output_tail: t.testOutputTail,
    };
  }
}
