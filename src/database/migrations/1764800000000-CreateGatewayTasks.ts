import { MigrationInterface, QueryRunner, Table } from 'typeorm';

/**
 * `gateway_tasks`: which user a task id named by a gateway call (`x-asa-task-id`) belongs to.
 * The first call under a new id claims it before it is sent upstream, so a call of another user
 * under that id is refused even while the first is in flight (its usage record not yet written).
 *
 * Filled from what was recorded before: every task id of the usage summaries that is not a task
 * of the task runner, owned by the user of its earliest call (the rule the gateway applied then).
 */
export class CreateGatewayTasks1764800000000 implements MigrationInterface {
  name = 'CreateGatewayTasks1764800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.createTable(
      new Table({
        name: 'gateway_tasks',
        columns: [
          { name: 'task_id', type: 'varchar', length: '64', isPrimary: true },
          { name: 'user_id', type: 'varchar', length: '128', isNullable: true },
          { name: 'created_at_ms', type: 'bigint' },
        ],
      }),
    );
    // llm_usage_task_totals holds one row per (task, model, user, provider, status) with its first call's time;
    // '' is its "no user". Ties on the first call's time go to the smallest user id, the same on both databases.
    await q.query(`
      INSERT INTO gateway_tasks (task_id, user_id, created_at_ms)
      SELECT task_id, CASE WHEN user_id = '' THEN NULL ELSE user_id END, first_at_ms
      FROM (
        SELECT k.task_id, k.user_id, k.first_at_ms,
               ROW_NUMBER() OVER (PARTITION BY k.task_id ORDER BY k.first_at_ms, k.user_id) AS n
        FROM llm_usage_task_totals k
        WHERE NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = k.task_id)
      ) firsts
      WHERE n = 1`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('gateway_tasks');
  }
}
