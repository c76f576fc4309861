import { Injectable } from '@nestjs/common';
import { DataSource, Repository, SelectQueryBuilder } from 'typeorm';
import { InjectReadDataSource } from '../../database/data-sources';
import { TaskStatsDto } from './dto/task.dto';
import { FINAL_TASK_STATUSES, Task, TASK_STATUSES, TaskStatus } from './entities/task.entity';
import { divRoundHalfUp } from '../../common/decimal';
import { nanosToUsd, nanosToUsdExact, parseNanos } from '../../common/money';
import { TASK_TOTALS_TABLE } from '../usage/rollups/rollup-schema';

export interface TaskStatsWindow {
  days: number;
  userId?: string;
  now?: number;
}

/** Task outcome metrics over a window of days (tasks created in it), computed in SQL. */

/** Money per task, rounded half-up; 0 when there is nothing to divide by. */
const perCount = (nanos: bigint, count: bigint): bigint => (count === 0n ? 0n : divRoundHalfUp(nanos, count));
@Injectable()
export class TaskStatsService {
  private readonly repo: Repository<Task>;

  constructor(@InjectReadDataSource() read: DataSource) {
    this.repo = read.getRepository(Task);
  }

  async stats(w: TaskStatsWindow): Promise<TaskStatsDto> {
    const since = (w.now ?? Date.now()) - w.days * 86_400_000;
    const scoped = <T extends object>(qb: SelectQueryBuilder<T>) => {
      qb.where('t.created_at_ms >= :since', { since });
      if (w.userId !== undefined) qb.andWhere('t.user_id = :userId', { userId: w.userId });
      return qb;
    };

    const byStatus = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
    const statusRows: { status: TaskStatus; n: unknown }[] = await scoped(this.repo.createQueryBuilder('t'))
      .select('t.status', 'status')
      .addSelect('COUNT(*)', 'n')
      .groupBy('t.status')
      .getRawMany();
    for (const r of statusRows) if (r.status in byStatus) byStatus[r.status] = Number(r.n);
    const total = Object.values(byStatus).reduce((a, b) => a + b, 0);

    const reasonRows: { reason: string | null; n: unknown }[] = await scoped(this.repo.createQueryBuilder('t'))
      .andWhere('t.status = :failed', { failed: 'failed' })
      .select('t.failure_reason', 'reason')
      .addSelect('COUNT(*)', 'n')
      .groupBy('t.failure_reason')
      .getRawMany();
    const failureReasons: Record<string, number> = {};
    for (const r of reasonRows) failureReasons[r.reason ?? 'unknown'] = Number(r.n);

    // Durations of tasks that ran and ended; p95 by nearest rank, fetched as one row with OFFSET.
    const ran = () =>
      scoped(this.repo.createQueryBuilder('t'))
        .andWhere('t.finished_at_ms IS NOT NULL')
        .andWhere('t.started_at_ms IS NOT NULL');
    const dur = await ran().select('COUNT(*)', 'n').addSelect('AVG(t.finished_at_ms - t.started_at_ms)', 'avg_ms').getRawOne<{ n: unknown; avg_ms: unknown }>();
    const ranCount = Number(dur?.n ?? 0);
    let p95Ms = 0;
    if (ranCount > 0) {
      const rank = Math.ceil(0.95 * ranCount);
      const row = await ran()
        .select('t.finished_at_ms - t.started_at_ms', 'd')
        .orderBy('d', 'ASC')
        .limit(1)
        .offset(rank - 1)
        .getRawOne<{ d: unknown }>();
      p95Ms = Number(row?.d ?? 0);
    }

    const finishedList = FINAL_TASK_STATUSES.map((s) => `'${s}'`).join(', ');
    // Money is summed as integer nano-dollars in SQL, so totals are exact.
    // From the per-task totals the usage sink keeps with the raw rows (one row per task, model, user,
    // provider and status): the same sums as over llm_usage, without reading a row per call.
    const costQb = this.repo.manager
      .createQueryBuilder()
      .from(TASK_TOTALS_TABLE, 'u')
      .innerJoin('tasks', 't', 't.id = u.task_id')
      .select('CAST(SUM(u.cost_nanos) AS TEXT)', 'all_nanos')
      .addSelect(`CAST(SUM(CASE WHEN t.status IN (${finishedList}) THEN u.cost_nanos ELSE 0 END) AS TEXT)`, 'finished_nanos');
    const cost = await scoped(costQb).getRawOne<{ all_nanos: unknown; finished_nanos: unknown }>();
    const allNanos = parseNanos(cost?.all_nanos);
    const finishedNanos = parseNanos(cost?.finished_nanos);
    const finishedCount = FINAL_TASK_STATUSES.reduce((n, s) => n + byStatus[s], 0);
    const decided = byStatus.succeeded + byStatus.failed;

    return {
      period_days: w.days,
      total_tasks: total,
      by_status: byStatus,
      failure_reasons: failureReasons,
      success_rate_percent: decided === 0 ? 0 : Math.round((byStatus.succeeded / decided) * 10_000) / 100,
      avg_duration_seconds: ranCount === 0 ? 0 : Math.round(Number(dur?.avg_ms ?? 0)) / 1000,
      p95_duration_seconds: p95Ms / 1000,
      total_cost_usd: nanosToUsd(allNanos),
      total_cost_usd_exact: nanosToUsdExact(allNanos),
      avg_cost_per_task_usd: nanosToUsd(perCount(finishedNanos, BigInt(finishedCount))),
      cost_per_successful_task_usd: nanosToUsd(perCount(finishedNanos, BigInt(byStatus.succeeded))),
    };
  }

  /** Task success rate in percent over a window, or null when no task finished as succeeded/failed in it. */
  async successRatePercent(days: number, userId?: string): Promise<number | null> {
    const s = await this.stats({ days, userId });
    return s.by_status.succeeded + s.by_status.failed === 0 ? null : s.success_rate_percent;
  }
}
