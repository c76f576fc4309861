import { MigrationInterface, QueryRunner, Table } from 'typeorm';

// Schema builder, not raw SQL, so one migration serves SQLite and PostgreSQL.
export class CreateQuotas1764320000000 implements MigrationInterface {
  name = 'CreateQuotas1764320000000';

  async up(q: QueryRunner): Promise<void> {
    // Rules created through the API (rules from QUOTAS_FILE live only in the file).
    await q.createTable(
      new Table({
        name: 'quota_rules',
        columns: [
          { name: 'id', type: 'varchar', length: '64', isPrimary: true },
          { name: 'body', type: 'text' },
          { name: 'created_at_ms', type: 'bigint' },
          { name: 'updated_at_ms', type: 'bigint' },
        ],
      }),
    );
    // Enforcement counters of block rules: one row per rule, scope value and window (spent and
    // reserved, changed only by single conditional UPDATEs so they hold across processes); rolling
    // windows keep a head row plus one spend row per hour bucket.
    await q.createTable(
      new Table({
        name: 'quota_counters',
        columns: [
          { name: 'rule_id', type: 'varchar', length: '64', isPrimary: true },
          { name: 'scope_key', type: 'varchar', length: '512', isPrimary: true },
          { name: 'window_key', type: 'varchar', length: '64', isPrimary: true },
          { name: 'window_start_ms', type: 'bigint', default: 0 },
          { name: 'spent_nanos', type: 'bigint', default: 0 },
          { name: 'spent_tokens', type: 'bigint', default: 0 },
          // Reservations of calls in flight, by the time slot they were taken in (the current slot
          // and the one before); older slots are forgotten, which frees what a crashed process held.
          { name: 'reserved_slot', type: 'bigint', default: 0 },
          { name: 'reserved_nanos', type: 'bigint', default: 0 },
          { name: 'reserved_tokens', type: 'bigint', default: 0 },
          { name: 'reserved_prev_nanos', type: 'bigint', default: 0 },
          { name: 'reserved_prev_tokens', type: 'bigint', default: 0 },
          { name: 'created_at_ms', type: 'bigint' },
        ],
      }),
    );
    // Leases of jobs that run once per tick across replicas (quota evaluation).
    await q.createTable(
      new Table({
        name: 'job_leases',
        columns: [
          { name: 'name', type: 'varchar', length: '64', isPrimary: true },
          { name: 'owner', type: 'varchar', length: '128' },
          { name: 'expires_at_ms', type: 'bigint' },
        ],
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('job_leases');
    await q.dropTable('quota_counters');
    await q.dropTable('quota_rules');
  }
}
