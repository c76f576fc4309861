import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { context, ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api';
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { tasksConfig } from '../../config/tasks.config';
import { AgentTask, TASK_AGENTS, TaskAgent, TaskAgentContext } from '../../plugins/sdk';
import { LlmClientFactory } from '../llm/llm-client.factory';
import { llmRefusalReason } from '../llm/llm.exceptions';
import { TaskMetricsService } from '../metrics/task-metrics.service';
import { runUntraced } from '../metrics/tracing';
import { Task } from './entities/task.entity';
import { TaskEndFields, TaskStore } from './task-store.service';

/** Why a running task's signal was aborted. */
type AbortReason = 'cancelled' | 'interrupted';

interface ActiveTask {
  controller: AbortController;
  done: Promise<void>;
}

/** A worker that stopped heartbeating this long ago is considered dead and its tasks are reaped. */
const MIN_STALE_AFTER_MS = 30_000;
/** After the shutdown grace, aborted agents get this long to return before their rows are ended for them. */
const ABORT_WAIT_MS = 5_000;


/** Label of `task_success_total` / `task_duration_seconds` for an end state. */
export function metricStatus(end: { status: Task['status']; failureReason?: string | null }): string {
  if (end.status === 'succeeded') return 'success';
  if (end.status === 'cancelled') return 'cancelled';
  if (end.failureReason === 'budget_exceeded' || end.failureReason === 'interrupted') return end.failureReason;
  return 'failure';
}

/**
 * The task workers of this process. Tasks are rows; a worker claims a queued row atomically
 * (see TaskStore.claimNext), runs the agent inside a `task {id}` span, and writes the end state.
 * Idle workers poll every TASK_POLL_INTERVAL_MS; a submit to this process wakes them at once.
 */
@Injectable()
export class TaskRunner implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(TaskRunner.name);
  readonly workerId = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private readonly active = new Map<string, ActiveTask>();
  private timer: NodeJS.Timeout | null = null;
  private stopping = false;
  private pumping: Promise<void> | null = null;
  private pumpAgain = false;
  private ticking: Promise<void> | null = null;
  private readonly staleAfterMs: number;

  constructor(
    private readonly store: TaskStore,
    @Inject(TASK_AGENTS) private readonly agents: TaskAgent[],
    private readonly llm: LlmClientFactory,
    private readonly metrics: TaskMetricsService,
    @Inject(tasksConfig.KEY) private readonly config: ConfigType<typeof tasksConfig>,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {
    this.staleAfterMs = Math.max(MIN_STALE_AFTER_MS, config.pollIntervalMs * 10);
  }

  async onApplicationBootstrap(): Promise<void> {
    // A SQLite file belongs to one process, so a `running` row at boot was left by a dead one.
    // On PostgreSQL other replicas may be alive: only rows whose heartbeat went stale are reaped.
    const sqlite = this.dataSource.options.type === 'sqlite';
    // Polling, heartbeats and claims are housekeeping: untraced, or every poll would be an orphan
    // trace of a few SELECTs. A task itself starts a fresh trace (see `start`).
    await runUntraced(() => this.reap(sqlite ? Number.POSITIVE_INFINITY : Date.now() - this.staleAfterMs));
    this.timer = setInterval(() => {
      if (!this.ticking) this.ticking = runUntraced(() => this.tick()).finally(() => (this.ticking = null));
    }, this.config.pollIntervalMs);
    this.timer.unref();
    void this.pump();
  }

  /** Looks for queued work now (called after a submit). */
  wake(): void {
    void this.pump();
  }

  isRunningHere(taskId: string): boolean {
    return this.active.has(taskId);
  }

  /** Aborts a task running in this process and waits up to `waitMs` for it to end. */
  async abortLocal(taskId: string, reason: AbortReason, waitMs: number): Promise<void> {
    const entry = this.active.get(taskId);
    if (!entry) return;
    if (!entry.controller.signal.aborted) entry.controller.abort(reason);
    await Promise.race([entry.done, sleep(waitMs, undefined, { ref: false })]);
  }

  /**
   * Shutdown, in onModuleDestroy so it happens before the usage recorder drains its queues
   * (beforeApplicationShutdown) and the database closes (onApplicationShutdown): stop claiming,
   * give running tasks TASK_SHUTDOWN_GRACE_MS to finish, then abort them as `interrupted`.
   */
  async onModuleDestroy(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    // A claim or heartbeat in flight finishes first (it may just have started a task).
    await Promise.allSettled([this.ticking, this.pumping]);
    if (this.active.size === 0) return;
    this.logger.log(`waiting up to ${this.config.shutdownGraceMs} ms for ${this.active.size} running task(s)`);
    await this.waitForActive(this.config.shutdownGraceMs);
    if (this.active.size === 0) return;
    const left = [...this.active.keys()];
    this.logger.warn(`interrupting ${left.length} running task(s) on shutdown: ${left.join(', ')}`);
    for (const entry of this.active.values()) entry.controller.abort('interrupted' satisfies AbortReason);
    await this.waitForActive(ABORT_WAIT_MS);
    // Agents that ignored the signal: end their rows now, so they are not left `running`.
    await runUntraced(() => this.endStuck());
  }

  private async endStuck(): Promise<void> {
    for (const id of this.active.keys()) {
      const task = await this.store.findById(id);
      const fields: TaskEndFields = { status: 'failed', failureReason: 'interrupted', failureDetail: 'the service shut down while the task ran' };
      if (task && (await this.store.finish(id, this.workerId, fields, Date.now()))) this.count(task, fields, Date.now());
    }
  }

  private async waitForActive(ms: number): Promise<void> {
    await Promise.race([Promise.allSettled([...this.active.values()].map((a) => a.done)), sleep(ms, undefined, { ref: false })]);
  }

  private async tick(): Promise<void> {
    if (this.stopping) return;
    try {
      const cancelled = await this.store.heartbeat([...this.active.keys()], this.workerId, Date.now());
      // Cancels requested through another replica arrive here as a flag on the row.
      for (const id of cancelled) void this.abortLocal(id, 'cancelled', 0);
      await this.reap(Date.now() - this.staleAfterMs);
    } catch (err) {
      this.logger.error(`task heartbeat failed: ${String(err)}`);
    }
    await this.pump();
  }

  private async reap(staleBeforeMs: number): Promise<void> {
    const now = Date.now();
    // Tasks running here are alive whatever their heartbeat says (e.g. after a long event-loop stall).
    const reaped = await this.store.reapRunning(staleBeforeMs, now, [...this.active.keys()]);
    for (const t of reaped) {
      this.logger.warn(`task ${t.id} was left running by a stopped process (${t.workerId ?? 'unknown'}); marked failed: interrupted`);
      this.count(t, { status: 'failed', failureReason: 'interrupted' }, now);
    }
  }

  private pump(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    if (this.pumping) {
      this.pumpAgain = true;
      return this.pumping;
    }
    this.pumping = runUntraced(() => this.claimLoop()).finally(() => (this.pumping = null));
    return this.pumping;
  }

  private async claimLoop(): Promise<void> {
    try {
      do {
        this.pumpAgain = false;
        while (!this.stopping && this.active.size < this.config.concurrency) {
          const task = await this.store.claimNext(this.workerId, Date.now());
          if (!task) break;
          this.start(task);
        }
      } while (this.pumpAgain && !this.stopping);
    } catch (err) {
      this.logger.error(`claiming queued tasks failed: ${String(err)}`);
    }
  }

  private start(task: Task): void {
    const controller = new AbortController();
    const entry: ActiveTask = { controller, done: Promise.resolve() };
    this.active.set(task.id, entry);
    // A task is its own trace (it outlives the submit request that woke the workers): root context.
    entry.done = context
      .with(ROOT_CONTEXT, () => this.run(task, controller.signal))
      .catch((err: unknown) => this.logger.error(`task ${task.id}: ${String(err)}`))
      .finally(() => {
        this.active.delete(task.id);
        void this.pump();
      });
  }

  private run(task: Task, signal: AbortSignal): Promise<void> {
    const tracer = trace.getTracer('asa-backend');
    const attributes = { 'asa.task_id': task.id, ...(task.userId ? { 'asa.user_id': task.userId } : {}), 'asa.task.agent': task.agent };
    return tracer.startActiveSpan(`task ${task.id}`, { attributes }, async (span) => {
      try {
        const end = await this.execute(task, signal);
        const now = Date.now();
        span.setAttributes({ 'asa.task.status': end.status, 'asa.task.attempts': end.attempts ?? 0 });
        if (end.failureReason) span.setAttribute('asa.task.failure_reason', end.failureReason);
        if (end.status === 'failed') span.setStatus({ code: SpanStatusCode.ERROR, message: end.failureReason ?? 'failed' });
        // Inside the span, so the duration histogram's exemplar points at this trace. If this write
        // fails (database down), the row keeps its stopped heartbeat and is reaped as interrupted.
        if (await this.store.finish(task.id, this.workerId, end, now)) this.count(task, end, now);
      } finally {
        span.end();
      }
    });
  }

  /** Runs the agent; never throws: every outcome becomes end-state fields. */
  private async execute(task: Task, signal: AbortSignal): Promise<TaskEndFields> {
    const seen: Pick<Task, 'attempts'> & Partial<Pick<Task, 'patch' | 'testOutputTail'>> = { attempts: 0 };
    const aborted = (): TaskEndFields | null => {
      if (!signal.aborted) return null;
      return signal.reason === 'cancelled'
        ? { ...seen, status: 'cancelled', failureReason: 'cancelled', failureDetail: 'cancelled while running' }
        : { ...seen, status: 'failed', failureReason: 'interrupted', failureDetail: 'the service shut down while the task ran' };
    };
    const agent = this.agents.find((a) => a.name === task.agent);
    if (!agent) {
      return { ...seen, status: 'failed', failureReason: 'agent_unavailable', failureDetail: `no task agent named "${task.agent}" is registered` };
    }
    const agentTask: AgentTask = {
      id: task.id,
      userId: task.userId,
      repoUrl: task.repoUrl,
      bugDescription: task.bugDescription,
      testCommand: task.testCommand,
      model: task.model,
      maxAttempts: task.maxAttempts,
      maxCostUsd: task.maxCostNanos / 1e9,
    };
    const ctx = (llm: TaskAgentContext['llm']): TaskAgentContext => ({
      task: agentTask,
      llm,
      signal,
      progress: async (u) => {
        if (u.attempt !== undefined) seen.attempts = u.attempt;
        if (u.patch !== undefined) seen.patch = u.patch;
        if (u.testOutputTail !== undefined) seen.testOutputTail = u.testOutputTail;
        await this.store.progress(task.id, this.workerId, {
          ...(u.attempt !== undefined ? { attempts: u.attempt } : {}),
          ...(u.stage !== undefined ? { stage: u.stage.slice(0, 32) } : {}),
          ...(u.patch !== undefined ? { patch: u.patch } : {}),
          ...(u.testOutputTail !== undefined ? { testOutputTail: u.testOutputTail } : {}),
        });
      },
    });
    try {
      const llm = this.llm.forTask(task.id, { userId: task.userId, maxCostUsd: agentTask.maxCostUsd });
      const result = await agent.run(ctx(llm));
      const fields = {
        attempts: result.attempts ?? seen.attempts,
        patch: result.patch !== undefined ? result.patch : (seen.patch ?? null),
        testOutputTail: result.testOutputTail !== undefined ? result.testOutputTail : (seen.testOutputTail ?? null),
      };
      if (result.outcome === 'succeeded') return { ...fields, status: 'succeeded', failureReason: null, failureDetail: null };
      const stopped = aborted();
      if (stopped) return { ...stopped, ...fields };
      const reason = (result.reason ?? 'failed').slice(0, 64);
      return { ...fields, status: 'failed', failureReason: reason, failureDetail: result.detail?.slice(0, 1000) ?? null };
    } catch (err) {
      const stopped = aborted();
      if (stopped) return stopped;
      const refused = llmRefusalReason(err);
      if (refused) return { ...seen, status: 'failed', failureReason: refused, failureDetail: (err as Error).message.slice(0, 1000) };
      const errorId = randomUUID();
      this.logger.error(`[${errorId}] task ${task.id}: agent "${agent.name}" threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      return { ...seen, status: 'failed', failureReason: 'agent_error', failureDetail: `internal error in the agent; reference ${errorId} in the server log` };
    }
  }

  private count(task: Pick<Task, 'startedAtMs' | 'createdAtMs'>, end: { status: Task['status']; failureReason?: string | null }, now: number): void {
    const startedAt = task.startedAtMs ?? now;
    this.metrics.taskFinished(metricStatus(end), Math.max(0, (now - startedAt) / 1000));
  }
}
