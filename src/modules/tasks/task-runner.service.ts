import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { context, ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api';
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { tasksConfig } from '../../config/tasks.config';
import { databaseUnavailableReason, isPermanentDataError } from '../../database/database-errors';
import { oneLine } from '../../common/plugin-loader';
import { PluginRegistry } from '../plugins/plugin-registry.service';
import { AgentTask, TASK_AGENTS, TaskAgent, TaskAgentContext } from '../../plugins/sdk';
import { LlmClientFactory } from '../llm/llm-client.factory';
import { llmRefusalReason } from '../llm/llm.exceptions';
import { TaskMetricsService } from '../metrics/task-metrics.service';
import { runUntraced } from '../metrics/tracing';
import { Task } from './entities/task.entity';
import { TaskEndFields, TaskStore } from './task-store.service';

/** Why a running task's signal was aborted. */
type AbortReason = 'cancelled' | 'interrupted' | 'timeout';

interface ActiveTask {
  task: Task;
  controller: AbortController;
  done: Promise<void>;
  /** The end state once the agent has returned (or shutdown gave up on it); it may still be waiting to be stored. */
  outcome: TaskEndFields | null;
}

/** Aborted agents (shutdown, run deadline) get this long to return before their tasks are ended for them. */
const ABORT_WAIT_MS = 5_000;
/** At shutdown, end states the database has not taken yet are retried this much longer, then given up. */
const FINAL_WRITE_SHUTDOWN_WAIT_MS = 5_000;
/** Backoff of a retried end-state write: first delay and cap. */
const RETRY_FIRST_DELAY_MS = 200;
const RETRY_MAX_DELAY_MS = 5_000;

/** A write given up at shutdown (the database never answered in time). */
const GAVE_UP = Symbol('gave up');
/** An agent that did not return ABORT_WAIT_MS after its signal was aborted. */
const LEFT_BEHIND = Symbol('left behind');


/**
 * Whether the process named by a worker id (`host:pid:random`, see TaskRunner.workerId) runs on
 * this host now. A reused pid reads as alive: its rows then wait for the heartbeat rule.
 */
export function workerProcessAlive(workerId: string | null): boolean {
  const parts = workerId?.split(':') ?? [];
  if (parts.length < 3) return false;
  const pid = Number(parts[parts.length - 2]);
  if (parts.slice(0, -2).join(':') !== hostname() || !Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

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
  /** Aborted when shutdown stops waiting for end states the database has not taken. */
  private readonly giveUp = new AbortController();
  /** Since when every heartbeat of this process has reached the database; null after a failed one. */
  private answeringSince: number | null = null;
  /** Since when the database has not answered this process (for logging an outage once). */
  private downSince: number | null = null;

  constructor(
    private readonly store: TaskStore,
    @Inject(TASK_AGENTS) private readonly agents: TaskAgent[],
    private readonly llm: LlmClientFactory,
    private readonly metrics: TaskMetricsService,
    @Inject(tasksConfig.KEY) private readonly config: ConfigType<typeof tasksConfig>,
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly plugins: PluginRegistry,
  ) {
    this.staleAfterMs = config.staleAfterMs;
  }

  async onApplicationBootstrap(): Promise<void> {
    // Polling, heartbeats and claims are housekeeping: untraced, or every poll would be an orphan
    // trace of a few SELECTs. A task itself starts a fresh trace (see `start`).
    // A SQLite file belongs to one process, so a `running` row at boot was left by a dead one. On
    // PostgreSQL other replicas may be alive: their stale rows are reaped by `tick`, once this
    // process's own heartbeats have worked for a whole stale window (see `mayReap`).
    if (this.dataSource.options.type === 'sqlite') await runUntraced(() => this.reap(Number.POSITIVE_INFINITY, { sparingLiveWorkers: true }));
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

  /**
   * Waits (up to `waitMs`) until this process is done with a task whose end state is already
   * stored. The API reads through its own connection, which can see the stored end state a moment
   * before the runner has counted it in the metrics and ended its span; a client polling this
   * process must not be told "finished" before its metrics and trace say so too.
   */
  async settled(taskId: string, waitMs: number): Promise<void> {
    const entry = this.active.get(taskId);
    if (entry) await Promise.race([entry.done, sleep(waitMs, undefined, { ref: false })]);
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
   * End states the database does not take (it is down) are retried until a deadline, then given
   * up with a log line: those rows stay `running` and are reaped as `interrupted` later.
   */
  async onModuleDestroy(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    // A claim or heartbeat in flight finishes first (it may just have started a task).
    await Promise.allSettled([this.ticking, this.pumping]);
    if (this.active.size === 0) return;
    const deadline = Date.now() + this.config.shutdownGraceMs + ABORT_WAIT_MS + FINAL_WRITE_SHUTDOWN_WAIT_MS;
    const giveUpTimer = setTimeout(() => this.giveUp.abort(), deadline - Date.now());
    giveUpTimer.unref();
    this.logger.log(`waiting up to ${this.config.shutdownGraceMs} ms for ${this.active.size} running task(s)`);
    await this.waitForActive(this.config.shutdownGraceMs);
    const unfinished = () => [...this.active.values()].filter((a) => a.outcome === null);
    if (unfinished().length > 0) {
      const left = unfinished().map((a) => a.task.id);
      this.logger.warn(`interrupting ${left.length} running task(s) on shutdown: ${left.join(', ')}`);
      for (const entry of unfinished()) entry.controller.abort('interrupted' satisfies AbortReason);
      await this.waitForActive(ABORT_WAIT_MS);
      // Agents that ignored the signal: end their rows now, so they are not left `running`.
      await runUntraced(() => this.endStuck(unfinished()));
    }
    await this.waitForActive(Math.max(0, deadline - Date.now()));
    clearTimeout(giveUpTimer);
    if (this.active.size === 0) return;
    this.giveUp.abort();
    await this.waitForActive(1_000);
  }

  private async waitForActive(ms: number): Promise<void> {
    await Promise.race([Promise.allSettled([...this.active.values()].map((a) => a.done)), sleep(ms, undefined, { ref: false })]);
  }

  private async endStuck(stuck: ActiveTask[]): Promise<void> {
    await Promise.all(
      stuck.map(async (entry) => {
        const fields: TaskEndFields = { status: 'failed', failureReason: 'interrupted', failureDetail: 'the service shut down while the task ran' };
        // Taken over from the agent: if it returns after all, its result is not written over this one.
        entry.outcome = fields;
        const stored = await this.storeEnd(entry.task, fields, Date.now());
        if (stored) this.active.delete(entry.task.id);
      }),
    );
  }

  private async tick(): Promise<void> {
    if (this.stopping) return;
    try {
      const ids = [...this.active.keys()];
      let cancelled: string[] = [];
      // With no task to heartbeat, a ping: either way, proof that this process reaches the database.
      if (ids.length > 0) cancelled = await this.store.heartbeat(ids, this.workerId, Date.now());
      else await this.store.ping();
      this.databaseAnswered();
      // Cancels requested through another replica arrive here as a flag on the row.
      for (const id of cancelled) void this.abortLocal(id, 'cancelled', 0);
      if (this.mayReap()) await this.reap(Date.now() - this.staleAfterMs);
    } catch (err) {
      this.databaseFailed('task heartbeat', err);
    }
    await this.pump();
  }

  /**
   * Whether stale rows of other workers may be reaped. A heartbeat older than the stale window
   * proves a worker dead only if the database could have taken its heartbeats all that time.
   * During an outage nobody's heartbeats land, so right after it every replica's rows look stale:
   * a replica reaps only once its own heartbeats have worked for a whole stale window, by which
   * time every live worker (heartbeating each poll interval) has refreshed its rows. The same
   * holds after this process starts, as it cannot know how long the database was reachable.
   */
  private mayReap(): boolean {
    return this.answeringSince !== null && Date.now() - this.answeringSince >= this.staleAfterMs;
  }

  private databaseAnswered(): void {
    const now = Date.now();
    this.answeringSince ??= now;
    if (this.downSince !== null) {
      this.logger.log(`the database answers again (after ${Math.round((now - this.downSince) / 1000)} s); stale tasks of other workers are reaped after ${this.staleAfterMs} ms`);
      this.downSince = null;
    }
  }

  /** Logs a database fault once per outage (every poll would log it again otherwise). */
  private databaseFailed(what: string, err: unknown): void {
    this.answeringSince = null;
    const reason = databaseUnavailableReason(err);
    if (reason === null) {
      this.logger.error(`${what} failed: ${String(err)}`);
      return;
    }
    if (this.downSince !== null) return;
    this.downSince = Date.now();
    this.logger.warn(`${what} failed, the database is unavailable (${reason}): heartbeats, claims and end states are retried until it answers`);
  }

  private async reap(staleBeforeMs: number, opts: { sparingLiveWorkers?: boolean } = {}): Promise<void> {
    const now = Date.now();
    // Tasks running here are alive whatever their heartbeat says (e.g. after a long event-loop stall),
    // including those whose agent has returned while their end state waits for the database.
    const skip = [...this.active.keys()];
    if (opts.sparingLiveWorkers) {
      // A second process started on the same SQLite file (not supported, but possible) must not
      // end the first one's live tasks: rows of a worker whose process still runs on this host are
      // left to the heartbeat rule, which reaps them only once they stop heartbeating.
      const live = (await this.store.runningTasks()).filter((t) => workerProcessAlive(t.workerId));
      for (const t of live) {
        this.logger.warn(
          `task ${t.id} is running in another live process (${t.workerId}) on this SQLite file: not reaped. ` +
            'A SQLite database serves one process; use PostgreSQL for several',
        );
        skip.push(t.id);
      }
    }
    const reaped = await this.store.reapRunning(staleBeforeMs, now, skip);
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
      this.databaseFailed('claiming queued tasks', err);
    }
  }

  private start(task: Task): void {
    const controller = new AbortController();
    const entry: ActiveTask = { task, controller, done: Promise.resolve(), outcome: null };
    this.active.set(task.id, entry);
    // A cancel that landed between the claim and this point found no task to abort here yet: the
    // row read right after the claim carries its flag. (One landing later finds the entry.)
    if (task.cancelRequested) controller.abort('cancelled' satisfies AbortReason);
    // A task is its own trace (it outlives the submit request that woke the workers): root context.
    // It stays in `active` (so it is heartbeated and never reaped) until its end state is stored.
    entry.done = context
      .with(ROOT_CONTEXT, () => this.run(entry, controller.signal))
      .catch((err: unknown) => this.logger.error(`task ${task.id}: ${String(err)}`))
      .finally(() => {
        if (this.active.get(task.id) === entry) this.active.delete(task.id);
        void this.pump();
      });
  }

  private run(entry: ActiveTask, signal: AbortSignal): Promise<void> {
    const { task } = entry;
    const tracer = trace.getTracer('asa-backend');
    const attributes = { 'asa.task_id': task.id, ...(task.userId ? { 'asa.user_id': task.userId } : {}), 'asa.task.agent': task.agent };
    return tracer.startActiveSpan(`task ${task.id}`, { attributes }, async (span) => {
      try {
        const end = await this.execute(task, signal);
        // Shutdown ended the row while the agent ignored its abort: that end state stands.
        if (entry.outcome !== null) return;
        entry.outcome = end;
        const now = Date.now();
        span.setAttributes({ 'asa.task.status': end.status, 'asa.task.attempts': end.attempts ?? 0 });
        if (end.failureReason) span.setAttribute('asa.task.failure_reason', end.failureReason);
        if (end.status === 'failed') span.setStatus({ code: SpanStatusCode.ERROR, message: end.failureReason ?? 'failed' });
        // Inside the span, so the duration histogram's exemplar points at this trace.
        await this.storeEnd(task, end, now);
      } finally {
        span.end();
      }
    });
  }

  /**
   * Writes a task's end state, retrying with backoff while the database does not answer (down,
   * unreachable, locked): an outcome is never dropped because one write failed. Bounded only by
   * shutdown (see onModuleDestroy). True when stored; false when given up or already ended.
   */
  private async storeEnd(task: Task, end: TaskEndFields, endedAt: number): Promise<boolean> {
    let fields = end;
    for (;;) {
      try {
        const stored = await this.retryWhileUnavailable(`end state (${end.status}) of task ${task.id}`, () =>
          this.store.finish(task.id, this.workerId, fields, endedAt),
        );
        if (stored === GAVE_UP) {
          this.logger.error(
            `task ${task.id}: gave up storing its end state (${end.status}${end.failureReason ? `: ${end.failureReason}` : ''}) at shutdown, the database did not answer; ` +
              'the row stays running and is marked interrupted at the next start (or by another replica)',
          );
          return false;
        }
        if (stored) this.count(task, end, endedAt);
        else this.logger.warn(`task ${task.id}: its end state (${end.status}) was not stored, the row had already been ended elsewhere (reaped after its heartbeats stopped)`);
        return stored;
      } catch (err) {
        // The database refused the values themselves: store the outcome without the task's text.
        if (fields !== end || !isPermanentDataError(err)) throw err;
        const errorId = randomUUID();
        this.logger.error(`[${errorId}] task ${task.id}: the database refused its end state: ${String(err)}`);
        fields = {
          status: end.status,
          failureReason: end.failureReason ?? null,
          attempts: end.attempts,
          failureDetail: `the task's output could not be stored; reference ${errorId} in the server log`,
        };
      }
    }
  }

  /** Runs `write` until the database answers it (any error but a refusal of the data is retried). */
  private async retryWhileUnavailable<T>(what: string, write: () => Promise<T>): Promise<T | typeof GAVE_UP> {
    let delay = RETRY_FIRST_DELAY_MS;
    let failures = 0;
    for (;;) {
      if (this.giveUp.signal.aborted) return GAVE_UP;
      try {
        const result = await write();
        if (failures > 0) this.logger.log(`stored the ${what} after ${failures} failed attempt(s)`);
        return result;
      } catch (err) {
        if (isPermanentDataError(err)) throw err;
        if (failures++ === 0) this.logger.warn(`could not store the ${what} (${databaseUnavailableReason(err) ?? String(err)}); retrying until the database answers`);
      }
      try {
        await sleep(delay * (0.8 + Math.random() * 0.4), undefined, { signal: this.giveUp.signal, ref: false });
      } catch {
        return GAVE_UP;
      }
      delay = Math.min(RETRY_MAX_DELAY_MS, delay * 2);
    }
  }

  /**
   * Runs the agent; never throws: every outcome becomes end-state fields. The run has a deadline
   * (TASK_RUN_TIMEOUT_MS), after which its signal aborts and the task fails `timeout`. An agent
   * that has not returned ABORT_WAIT_MS after its signal aborted (deadline, cancel, shutdown) is
   * left behind and its task ended, so a plugin whose run() never settles cannot hold a worker
   * slot for ever.
   */
  private async execute(task: Task, taskSignal: AbortSignal): Promise<TaskEndFields> {
    const deadline = new AbortController();
    const signal = AbortSignal.any([taskSignal, deadline.signal]);
    const seen: Pick<Task, 'attempts'> & Partial<Pick<Task, 'patch' | 'testOutputTail'>> = { attempts: 0 };
    const timeoutDetail = () => `the agent "${task.agent}" did not finish within TASK_RUN_TIMEOUT_MS (${this.config.runTimeoutMs} ms); the run was stopped`;
    const aborted = (): TaskEndFields | null => {
      if (!signal.aborted) return null;
      if (taskSignal.aborted && taskSignal.reason === 'cancelled') return { ...seen, status: 'cancelled', failureReason: 'cancelled', failureDetail: 'cancelled while running' };
      if (taskSignal.aborted) return { ...seen, status: 'failed', failureReason: 'interrupted', failureDetail: 'the service shut down while the task ran' };
      return { ...seen, status: 'failed', failureReason: 'timeout', failureDetail: timeoutDetail() };
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
        // Best effort: the end state carries the same fields, so a database fault here must not fail the task.
        try {
          await this.store.progress(task.id, this.workerId, {
            ...(u.attempt !== undefined ? { attempts: u.attempt } : {}),
            ...(u.stage !== undefined ? { stage: u.stage.slice(0, 32) } : {}),
            ...(u.patch !== undefined ? { patch: u.patch } : {}),
            ...(u.testOutputTail !== undefined ? { testOutputTail: u.testOutputTail } : {}),
          });
        } catch (err) {
          this.databaseFailed(`progress of task ${task.id}`, err);
        }
      },
    });
    const deadlineTimer = setTimeout(() => deadline.abort('timeout' satisfies AbortReason), this.config.runTimeoutMs);
    let graceTimer: NodeJS.Timeout | undefined;
    const leftBehind = new Promise<typeof LEFT_BEHIND>((resolve) => {
      const grace = () => (graceTimer = setTimeout(() => resolve(LEFT_BEHIND), ABORT_WAIT_MS));
      if (signal.aborted) grace();
      else signal.addEventListener('abort', grace, { once: true });
    });
    try {
      const llm = this.llm.forTask(task.id, { userId: task.userId, maxCostUsd: agentTask.maxCostUsd });
      const result = await Promise.race([Promise.resolve().then(() => agent.run(ctx(llm))), leftBehind]);
      if (result === LEFT_BEHIND) {
        const end = aborted()!;
        const why = `run() did not return ${ABORT_WAIT_MS} ms after its signal was aborted (${end.failureReason})`;
        this.plugins.handle('agent', agent.name)?.failed(`task ${task.id}: ${why}`);
        this.logger.warn(`task ${task.id}: agent "${agent.name}" ${why}: left behind, its worker slot is free again`);
        return { ...end, failureDetail: `${end.failureDetail}; the agent did not stop when told to and was left behind` };
      }
      this.plugins.handle('agent', agent.name)?.succeeded();
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
      this.plugins.handle('agent', agent.name)?.failed(`task ${task.id}: ${oneLine(err)} (reference ${errorId} in the server log)`);
      this.logger.error(`[${errorId}] task ${task.id}: agent "${agent.name}" threw: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      return { ...seen, status: 'failed', failureReason: 'agent_error', failureDetail: `internal error in the agent; reference ${errorId} in the server log` };
    } finally {
      clearTimeout(deadlineTimer);
      clearTimeout(graceTimer);
    }
  }

  private count(task: Pick<Task, 'startedAtMs' | 'createdAtMs'>, end: { status: Task['status']; failureReason?: string | null }, now: number): void {
    const startedAt = task.startedAtMs ?? now;
    this.metrics.taskFinished(metricStatus(end), Math.max(0, (now - startedAt) / 1000));
  }
}
