import { MigrationInterface, QueryRunner } from 'typeorm';
import { DAILY_USER, DbType, summariseFromFinerSql, WEEKLY_USER } from '../../modules/usage/rollups/rollup-schema';
import { summaryTable } from './1764600000000-CreateUsageRollups';

/**
 * The weekly per-user rollup (see rollup-schema.ts), filled from the daily per-user one in the
 * same transaction: the daily rollup holds every day, including those whose raw rows retention
 * deleted, so the weeks are complete from the start. On PostgreSQL the same fill factor as the
 * other summaries (see RollupsFillfactor1764700000000): the usage sink updates its rows in place.
 */
export class CreateWeeklyUserRollup1764810000000 implements MigrationInterface {
  name = 'CreateWeeklyUserRollup1764810000000';

  async up(q: QueryRunner): Promise<void> {
    const db = q.connection.options.type as DbType;
    await q.createTable(summaryTable(WEEKLY_USER));
    if (db === 'postgres') await q.query(`ALTER TABLE ${WEEKLY_USER.table} SET (fillfactor = 70)`);
    await q.query(summariseFromFinerSql(db, WEEKLY_USER, DAILY_USER, '1 = 1'));
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable(WEEKLY_USER.table);
  }
}
