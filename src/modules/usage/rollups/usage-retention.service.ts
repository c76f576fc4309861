import { Inject, Injectable, Logger } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { DataSource } from 'typeorm';
import { usageConfig } from '../../../config/usage.config';
import { InjectWriteDataSource } from '../../../database/data-sources';
import { JobLeaseService } from '../../../database/job-lease.service';
import { rawHorizonMs } from './rollup-schema';

export const RETENTION_LEASE = 'usage-raw-retention';

export interface RetentionResult {
  /** False when retention is off or another replica holds the lease this tick. */
  ran: boolean;
  /** Raw rows of hours before this were deleted (ISO); null when not run. */
  horizon: string | null;
  deleted: number;
}

/**
 * USAGE_RAW_RETENTION_DAYS: deletes raw `llm_usage` rows of whole hours older than the limit, in
 * small batches (oldest first), and keeps the hourly rollup and the per-task totals, which the
 * usage API answers those hours and tasks from. Once per tick across replicas (job lease).
 */
@Injectable()
export class UsageRetentionService {
  private readonly logger = new Logger(UsageRetentionService.name);

  // Deletes stand on their own (see WRITE_DATA_SOURCE): on SQLite's main connection they would
  // join, and could be rolled back with, a usage sink batch.
  constructor(
    @InjectWriteDataSource() private readonly dataSource: DataSource,
    private readonly lease: JobLeaseService,
    @Inject(usageConfig.KEY) private readonly config: ConfigType<typeof usageConfig>,
  ) {}

  get enabled(): boolean {
    return this.config.retention.rawDays !== null;
  }

  /** The scheduled tick: runs when this replica holds the lease. */
  async tick(nowMs = Date.now()): Promise<RetentionResult> {
    if (!this.enabled) return { ran: false, horizon: null, deleted: 0 };
    const ttlMs = Math.ceil(this.config.retention.intervalMs * 1.5);
    if (!(await this.lease.acquire(RETENTION_LEASE, ttlMs, nowMs))) return { ran: false, horizon: null, deleted: 0 };
    return this.purge(nowMs);
  }

  /** Deletes every raw row before the retention horizon, a batch per statement (each its own short transaction). */
  async purge(nowMs = Date.now()): Promise<RetentionResult> {
    const horizon = rawHorizonMs(nowMs, this.config.retention.rawDays);
    if (horizon === null) return { ran: false, horizon: null, deleted: 0 };
    const batch = this.config.retention.batchSize;
    let deleted = 0;
    for (;;) {
      const n = await this.deleteBatch(horizon, batch);
      deleted += n;
      if (n < batch) break;
      // Let queued queries (the usage API, the sink) in between batches.
      await new Promise((r) => setImmediate(r));
    }
    if (deleted > 0) this.logger.log(`usage retention: deleted ${deleted} raw rows before ${new Date(horizon).toISOString()} (rollups kept)`);
    return { ran: true, horizon: new Date(horizon).toISOString(), deleted };
  }

  private async deleteBatch(horizonMs: number, limit: number): Promise<number> {
    // Oldest first, so at most the oldest remaining hour is ever partly deleted (rebuild starts after it).
    const sql =
      'DELETE FROM llm_usage WHERE id IN (SELECT id FROM llm_usage WHERE created_at_ms < CAST(:horizon AS BIGINT) ORDER BY created_at_ms LIMIT :limit)';
    const [query, values] = this.dataSource.driver.escapeQueryWithParameters(sql, { horizon: String(horizonMs), limit }, {});
    const runner = this.dataSource.createQueryRunner();
    try {
      return (await runner.query(query, values, true)).affected ?? 0;
    } finally {
      await runner.release();
    }
  }
}
