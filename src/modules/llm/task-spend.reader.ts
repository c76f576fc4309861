import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { UsageRecorder } from '../usage/usage-recorder.service';

/** What a task has spent on LLM calls so far, exactly, from the `llm_usage` table. */
@Injectable()
export class TaskSpendReader {
  constructor(
    private readonly dataSource: DataSource,
    private readonly recorder: UsageRecorder,
  ) {}

  /**
   * Sum of `cost_nanos` of the task's calls (unpriced calls count 0), after flushing the usage
   * queues so records still in flight are included. Summed as an integer in the database and
   * read as text, so no value ever passes through a float (works on SQLite and PostgreSQL).
   */
  async spentNanos(taskId: string): Promise<bigint> {
    await this.recorder.flush();
    const row = await this.dataSource
      .createQueryBuilder()
      .select('CAST(SUM(u.cost_nanos) AS TEXT)', 'total')
      .from('llm_usage', 'u')
      .where('u.task_id = :taskId', { taskId })
      .getRawOne<{ total: string | null }>();
    const total = row?.total ?? null;
    return total === null ? 0n : BigInt(total.split('.')[0]);
  }
}
