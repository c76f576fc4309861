import { MigrationInterface, QueryRunner } from 'typeorm';
import { DAILY_USER, WEEKLY_USER } from '../../modules/usage/rollups/rollup-schema';
import { createSummaryFrom } from './1764600000000-CreateUsageRollups';

/**
 * The weekly per-user rollup (see rollup-schema.ts), filled from the daily per-user one in the
 * same transaction: the daily rollup holds every day, including those whose raw rows retention
 * deleted, so the weeks are complete from the start. On PostgreSQL the same fill factor as the
 * other summaries (see RollupsFillfactor1764700000000): the usage sink updates its rows in place.
 */
export class CreateWeeklyUserRollup1764810000000 implements MigrationInterface {
  name = 'CreateWeeklyUserRollup1764810000000';

  async up(q: QueryRunner): Promise<void> {
    await createSummaryFrom(q, WEEKLY_USER, DAILY_USER);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable(WEEKLY_USER.table);
  }
}
