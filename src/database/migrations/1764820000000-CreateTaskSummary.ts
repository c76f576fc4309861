import { MigrationInterface, QueryRunner } from 'typeorm';
import { DbType, summariseFromFinerSql, TASK_SUMMARY, TASK_TOTALS } from '../../modules/usage/rollups/rollup-schema';
import { summaryTable } from './1764600000000-CreateUsageRollups';

/**
 * The per-task summary (one row per task, see rollup-schema.ts), filled from the per-task totals
 * in the same transaction: they hold every task, including those whose raw rows retention deleted.
 * On PostgreSQL the same fill factor as the other summaries (see RollupsFillfactor1764700000000).
 */
export class CreateTaskSummary1764820000000 implements MigrationInterface {
  name = 'CreateTaskSummary1764820000000';

  async up(q: QueryRunner): Promise<void> {
    const db = q.connection.options.type as DbType;
    await q.createTable(summaryTable(TASK_SUMMARY));
    if (db === 'postgres') await q.query(`ALTER TABLE ${TASK_SUMMARY.table} SET (fillfactor = 70)`);
    await q.query(summariseFromFinerSql(db, TASK_SUMMARY, TASK_TOTALS, '1 = 1'));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable(TASK_SUMMARY.table);
  }
}
