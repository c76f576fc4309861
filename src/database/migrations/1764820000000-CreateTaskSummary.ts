import { MigrationInterface, QueryRunner } from 'typeorm';
import { TASK_SUMMARY, TASK_TOTALS } from '../../modules/usage/rollups/rollup-schema';
import { createSummaryFrom } from './1764600000000-CreateUsageRollups';

/**
 * The per-task summary (one row per task, see rollup-schema.ts), filled from the per-task totals
 * in the same transaction: they hold every task, including those whose raw rows retention deleted.
 * On PostgreSQL the same fill factor as the other summaries (see RollupsFillfactor1764700000000).
 */
export class CreateTaskSummary1764820000000 implements MigrationInterface {
  name = 'CreateTaskSummary1764820000000';

  async up(q: QueryRunner): Promise<void> {
    await createSummaryFrom(q, TASK_SUMMARY, TASK_TOTALS);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable(TASK_SUMMARY.table);
  }
}
