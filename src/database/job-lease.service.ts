import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { DataSource } from 'typeorm';
import { InjectWriteDataSource } from './data-sources';

/**
 * Leases for jobs that must run once per tick across replicas: a row per job with its owner and
 * expiry, taken by one conditional UPDATE (atomic on SQLite and PostgreSQL). The holder renews it
 * each tick; when it stops (crash, shutdown), another replica takes over once it has expired.
 */
@Injectable()
export class JobLeaseService {
  /** This process (each app instance gets its own). */
  readonly owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

  // Lease rows stand on their own (see WRITE_DATA_SOURCE): on SQLite's main connection a lease taken
  // while the usage sink has a batch transaction open would be undone with that batch's rollback.
  constructor(@InjectWriteDataSource() private readonly dataSource: DataSource) {}

  /** True when this process holds `name` until `nowMs + ttlMs`. */
  async acquire(name: string, ttlMs: number, nowMs = Date.now()): Promise<boolean> {
    await this.run(`INSERT INTO job_leases (name, owner, expires_at_ms) VALUES (:name, '', 0) ON CONFLICT DO NOTHING`, { name });
    const taken = await this.run(
      `UPDATE job_leases SET owner = :owner, expires_at_ms = CAST(:exp AS BIGINT) WHERE name = :name AND (owner = :owner OR expires_at_ms < CAST(:now AS BIGINT))`,
      { name, owner: this.owner, exp: String(nowMs + ttlMs), now: String(nowMs) },
    );
    return taken === 1;
  }

  /**
   * True when this process takes `name` and no one (this process included) held it: for a job that
   * must run once per period, not once per tick of each holder. The lease then simply expires.
   */
  async claim(name: string, ttlMs: number, nowMs = Date.now()): Promise<boolean> {
    await this.run(`INSERT INTO job_leases (name, owner, expires_at_ms) VALUES (:name, '', 0) ON CONFLICT DO NOTHING`, { name });
    const taken = await this.run(
      `UPDATE job_leases SET owner = :owner, expires_at_ms = CAST(:exp AS BIGINT) WHERE name = :name AND expires_at_ms < CAST(:now AS BIGINT)`,
      { name, owner: this.owner, exp: String(nowMs + ttlMs), now: String(nowMs) },
    );
    return taken === 1;
  }

  /** Gives the lease up (on shutdown), so another replica need not wait for it to expire. */
  async release(name: string): Promise<void> {
    await this.run(`UPDATE job_leases SET expires_at_ms = 0 WHERE name = :name AND owner = :owner`, { name, owner: this.owner });
  }

  async holder(name: string): Promise<{ owner: string; expiresAtMs: number } | null> {
    const [query, values] = this.dataSource.driver.escapeQueryWithParameters(`SELECT owner, expires_at_ms FROM job_leases WHERE name = :name`, { name }, {});
    const rows: { owner: string; expires_at_ms: string | number }[] = await this.dataSource.query(query, values);
    return rows[0] ? { owner: rows[0].owner, expiresAtMs: Number(rows[0].expires_at_ms) } : null;
  }

  private async run(sql: string, params: Record<string, unknown>): Promise<number> {
    const [query, values] = this.dataSource.driver.escapeQueryWithParameters(sql, params, {});
    const runner = this.dataSource.createQueryRunner();
    try {
      return (await runner.query(query, values, true)).affected ?? 0;
    } finally {
      await runner.release();
    }
  }
}
