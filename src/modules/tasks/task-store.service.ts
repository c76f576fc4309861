import { Injectable } from '@nestjs/common';
import { Brackets, DataSource, In, Repository } from 'typeorm';
import { InjectReadDataSource, InjectWriteDataSource } from '../../database/data-sources';
import { Task, TaskStatus } from './entities/task.entity';
import { parseNanos } from '../../common/money';
import type { KeysetCursor } from '../../common/keyset-cursor';

export interface TaskListFilter {
  status?: TaskStatus;
  userId?: string;
  limit: number;
  after?: KeysetCursor | null;
}

export type TaskEndFields = Pick<Task, 'status'> &
  Partial<Pick<Task, 'failureReason' | 'failureDetail' | 'attempts' | 'patch' | 'testOutputTail' | 'stage'>>;

type ProgressFields = Partial<Pick<Task, 'attempts' | 'stage' | 'patch' | 'testOutputTail'>>;

/**
 * Text a task produced (test output, a model's patch, an error message) may hold NUL bytes, which
 * PostgreSQL text columns refuse: the write would fail every time and the outcome would be lost.
 */
function storable<T extends Partial<Record<keyof Task, unknown>>>(fields: T): T {
  const out = { ...fields };
  for (const key of ['patch', 'testOutputTail', 'failureDetail', 'stage'] as const) {
    const v = out[key];
    if (typeof v === 'string' && v.includes('\u0000')) (out as Record<string, unknown>)[key] = v.replace(/\u0000/g, '\uFFFD');
  }
  return out;
}

/**
 * Every read and write of the `tasks` table. State changes are conditional UPDATEs whose
 * affected-row count decides who won, so they stay correct with several workers and replicas.
 * What the API reads goes through the read side (on SQLite its own connection, which never waits
 * behind a write); writes, and the workers' reads that decide one, go through the write side (on
 * SQLite a connection no other caller's transaction can swallow them into, see data-sources.ts).
 */
@Injectable()
export class TaskStore {
  private readonly repo: Repository<Task>;
  private readonly reader: Repository<Task>;

  constructor(@InjectWriteDataSource() write: DataSource, @InjectReadDataSource() read: DataSource) {
    this.repo = write.getRepository(Task);
    this.reader = read.getRepository(Task);
  }

  async insert(task: Task): Promise<void> {
    await this.repo.insert(task);
  }

  findById(id: string): Promise<Task | null> {
    return this.reader.findOneBy({ id });
  }

  /** A cheap round trip on the writer: proof that this process reaches the database. */
  async ping(): Promise<void> {
    await this.repo.query('SELECT 1');
  }

  /** Newest first, keyset-paginated on (created_at_ms, id). Returns up to limit + 1 rows. */
  list(filter: TaskListFilter): Promise<Task[]> {
    const qb = this.reader.createQueryBuilder('t');
    if (filter.status) qb.andWhere('t.status = :status', { status: filter.status });
    if (filter.userId !== undefined) qb.andWhere('t.user_id = :userId', { userId: filter.userId });
    const after = filter.after;
    if (after) {
      qb.andWhere(
        new Brackets((w) =>
          w
            .where('t.created_at_ms < :afterMs', { afterMs: after.ms })
            .orWhere('(t.created_at_ms = :afterMs AND t.id < :afterId)', { afterId: after.id }),
        ),
      );
    }
    return qb.orderBy('t.created_at_ms', 'DESC').addOrderBy('t.id', 'DESC').take(filter.limit + 1).getMany();
  }

  /** LLM cost per task in nano-dollars, summed in SQL over the usage records (exact). */
  async costsOf(ids: string[]): Promise<Map<string, bigint>> {
    const out = new Map<string, bigint>(ids.map((id) => [id, 0n]));
    if (ids.length === 0) return out;
    const rows: { task_id: string; nanos: unknown }[] = await this.reader.manager
      .createQueryBuilder()
      .select('u.task_id', 'task_id')
      .addSelect('CAST(SUM(u.cost_nanos) AS TEXT)', 'nanos')
      .from('llm_usage', 'u')
      .where('u.task_id IN (:...ids)', { ids })
      .groupBy('u.task_id')
      .getRawMany();
    for (const r of rows) out.set(r.task_id, parseNanos(r.nanos));
    return out;
  }

  /**
   * Claims the oldest queued task for `workerId`, or returns null when there is none. The
   * `WHERE status = 'queued'` on the UPDATE is the lock: of two workers racing for one row,
   * exactly one sees an affected row; the other moves on to the next candidate.
   */
  async claimNext(workerId: string, now: number): Promise<Task | null> {
    // Each lost race means that row left `queued`, so re-reading candidates always makes progress.
    for (;;) {
      const candidates = await this.repo.find({
        select: { id: true },
        where: { status: 'queued' },
        order: { createdAtMs: 'ASC', id: 'ASC' },
        take: 8,
      });
      if (candidates.length === 0) return null;
      for (const { id } of candidates) {
        const res = await this.repo
          .createQueryBuilder()
          .update(Task)
          .set({ status: 'running', workerId, startedAtMs: now, heartbeatAtMs: now, stage: 'starting' })
          .where('id = :id AND status = :queued', { id, queued: 'queued' })
          .execute();
        if (res.affected === 1) return this.repo.findOneBy({ id });
      }
    }
  }

  /** Progress of a running task; ignored once the task no longer belongs to this worker. */
  async progress(id: string, workerId: string, fields: ProgressFields): Promise<void> {
    if (Object.keys(fields).length === 0) return;
    await this.repo
      .createQueryBuilder()
      .update(Task)
      .set(storable(fields))
      .where('id = :id AND status = :running AND worker_id = :workerId', { id, running: 'running', workerId })
      .execute();
  }

  /** Refreshes the heartbeat of this worker's running tasks; returns the ids whose cancel was requested. */
  async heartbeat(ids: string[], workerId: string, now: number): Promise<string[]> {
    if (ids.length === 0) return [];
    await this.repo
      .createQueryBuilder()
      .update(Task)
      .set({ heartbeatAtMs: now })
      .where({ id: In(ids), status: 'running', workerId })
      .execute();
    const cancelled = await this.repo.find({ select: { id: true }, where: { id: In(ids), cancelRequested: true } });
    return cancelled.map((t) => t.id);
  }

  /** Ends a running task this worker owns. False when someone else ended it first (e.g. reaped). */
  async finish(id: string, workerId: string, fields: TaskEndFields, now: number): Promise<boolean> {
    const res = await this.repo
      .createQueryBuilder()
      .update(Task)
      .set({ ...storable(fields), finishedAtMs: now, stage: fields.stage ?? null })
      .where('id = :id AND status = :running AND worker_id = :workerId', { id, running: 'running', workerId })
      .execute();
    return res.affected === 1;
  }

  /** queued -> cancelled, atomically. False when the task was no longer queued. */
  async cancelQueued(id: string, now: number): Promise<boolean> {
    const res = await this.repo
      .createQueryBuilder()
      .update(Task)
      .set({ status: 'cancelled', failureReason: 'cancelled', failureDetail: 'cancelled before it started', finishedAtMs: now, cancelRequested: true })
      .where('id = :id AND status = :queued', { id, queued: 'queued' })
      .execute();
    return res.affected === 1;
  }

  /** Flags a running task for cancellation (its worker, on any replica, sees the flag). */
  async requestCancel(id: string): Promise<boolean> {
    const res = await this.repo
      .createQueryBuilder()
      .update(Task)
      .set({ cancelRequested: true })
      .where('id = :id AND status = :running', { id, running: 'running' })
      .execute();
    return res.affected === 1;
  }

  /**
   * Marks `running` tasks whose worker is gone as failed/interrupted: those whose heartbeat is
   * older than `staleBeforeMs` (or, with `staleBeforeMs` = Infinity, every running task).
   * Returns the tasks this call ended (each exactly once across replicas).
   */
  /** Every task marked running, by any worker. */
  runningTasks(): Promise<Task[]> {
    return this.repo.find({ where: { status: 'running' } });
  }

  async reapRunning(staleBeforeMs: number, now: number, skipIds: readonly string[] = []): Promise<Task[]> {
    const qb = this.repo.createQueryBuilder('t').where('t.status = :running', { running: 'running' });
    if (Number.isFinite(staleBeforeMs)) {
      qb.andWhere(new Brackets((w) => w.where('t.heartbeat_at_ms < :stale', { stale: staleBeforeMs }).orWhere('t.heartbeat_at_ms IS NULL')));
    }
    const stale = (await qb.getMany()).filter((t) => !skipIds.includes(t.id));
    const reaped: Task[] = [];
    for (const t of stale) {
      const res = await this.repo
        .createQueryBuilder()
        .update(Task)
        .set({
          status: 'failed',
          failureReason: 'interrupted',
          failureDetail: 'the process running this task stopped before it finished',
          finishedAtMs: now,
          stage: null,
        })
        .where('id = :id AND status = :running', { id: t.id, running: 'running' })
        .andWhere(t.heartbeatAtMs === null ? 'heartbeat_at_ms IS NULL' : 'heartbeat_at_ms = :hb', { hb: t.heartbeatAtMs })
        .execute();
      if (res.affected === 1) reaped.push({ ...t, status: 'failed', failureReason: 'interrupted', finishedAtMs: now });
    }
    return reaped;
  }
}
