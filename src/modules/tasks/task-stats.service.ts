import { Injectable } from '@nestjs/common';
import { DataSource, Repository, SelectQueryBuilder } from 'typeorm';
import { InjectParallelReadDataSources, InjectReadDataSource } from '../../database/data-sources';
import { TaskStatsDto } from './dto/task.dto';
import { FINAL_TASK_STATUSES, Task, TASK_STATUSES, TaskStatus } from './entities/task.entity';
import { divRoundHalfUp } from '../../common/decimal';
import { nanosToUsd, nanosToUsdExact, parseNanos } from '../../common/money';
import { TASK_SUMMARY_TABLE } from '../usage/rollups/rollup-schema';

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
  /** Where the cost query runs, alongside the task counts (see PARALLEL_READ_DATA_SOURCES). */
  private readonly costSide: DataSource;

  constructor(@InjectReadDataSource() read: DataSource, @InjectParallelReadDataSources() reads: DataSource[]) {
    this.repo = read.getRepository(Task);
    this.costSide = reads[1] ?? read;
  }

  async stats(w: TaskStatsWindow): Promise<TaskStatsDto> {
    const since = (w.now ?? Date.now()) - w.days * 86_400_000;
    const scoped = <T extends object>(qb: SelectQueryBuilder<T>) => {
      qb.where('t.created_at_ms >= :since', { since });
      if (w.userId !== undefined) qb.andWhere('t.user_id = :userId', { userId: w.userId });
      return qb;
    };

    const finishedList = FINAL_TASK_STATUSES.map((s) => `'${s}'`).join(', ');
    // Money is summed as integer nano-dollars in SQL, so totals are exact. From the per-task summary
    // the usage sink keeps with the raw rows (one row per task): the same sums as over llm_usage,
    // without reading a row per call.
    const costQb = this.costSide
      .createQueryBuilder()
      .from(TASK_SUMMARY_TABLE, 'u')
      .innerJoin('tasks', 't', 't.id = u.task_id')
      .select('CAST(SUM(u.cost_nanos) AS TEXT)', 'all_nanos')
      .addSelect(`CAST(SUM(CASE WHEN t.status IN (${finishedList}) THEN u.cost_nanos ELSE 0 END) AS TEXT)`, 'finished_nanos');

    // Counts by status and failure reason, and the durations' count and sum, in one pass over the
    // window's tasks; the money at the same time, on another connection.
    const [groupRows, cost] = await Promise.all([
      scoped(this.repo.createQueryBuilder('t'))
        .select('t.status', 'status')
        .addSelect('t.failure_reason', 'reason')
        .addSelect('COUNT(*)', 'n')
        .addSelect('SUM(CASE WHEN t.finished_at_ms IS NOT NULL AND t.started_at_ms IS NOT NULL THEN 1 ELSE 0 END)', 'ran')
        // NULL when either end is missing: SUM skips it, as the count above does.
        .addSelect('CAST(SUM(t.finished_at_ms - t.started_at_ms) AS TEXT)', 'ran_ms')
        .groupBy('t.status')
        .addGroupBy('t.failure_reason')
        .getRawMany<{ status: TaskStatus; reason: string | null; n: unknown; ran: unknown; ran_ms: unknown }>(),
      scoped(costQb).getRawOne<{ all_nanos: unknown; finished_nanos: unknown }>(),
    ]);
    const byStatus = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
    const failureReasons: Record<string, number> = {};
    let ranCount = 0;
    let ranMs = 0n;
    for (const r of groupRows) {
      if (r.status in byStatus) byStatus[r.status] += Number(r.n);
      if (r.status === 'failed') failureReasons[r.reason ?? 'unknown'] = (failureReasons[r.reason ?? 'unknown'] ?? 0) + Number(r.n);
      ranCount += Number(r.ran ?? 0);
      ranMs += parseNanos(r.ran_ms); // an integer sum as text, parsed as exactly as the money
    }
    const total = Object.values(byStatus).reduce((a, b) => a + b, 0);

    // Durations of tasks that ran and ended; p95 by nearest rank, fetched as one row with OFFSET,
    // counted from the longest: the same value, and the database keeps only the longest 5 % while
    // it sorts (a top-N sort) instead of ordering them all.
    let p95Ms = 0;
    if (ranCount > 0) {
      const rank = Math.ceil(0.95 * ranCount);
      const row = await scoped(this.repo.createQueryBuilder('t'))
        .andWhere('t.finished_at_ms IS NOT NULL')
        .andWhere('t.started_at_ms IS NOT NULL')
        .select('t.finished_at_ms - t.started_at_ms', 'd')
        .orderBy('d', 'DESC')
        .limit(1)
        .offset(ranCount - rank)
        .getRawOne<{ d: unknown }>();
      p95Ms = Number(row?.d ?? 0);
    }

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
      avg_duration_seconds: ranCount === 0 ? 0 : Math.round(Number(ranMs) / ranCount) / 1000,
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
