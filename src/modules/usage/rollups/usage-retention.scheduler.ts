import { Inject, Injectable } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { SchedulerRegistry } from '@nestjs/schedule';
import { usageConfig } from '../../../config/usage.config';
import { JobLeaseService } from '../../../database/job-lease.service';
import { LeasedIntervalJob } from '../../../database/leased-interval-job';
import { RETENTION_LEASE, UsageRetentionService } from './usage-retention.service';

/** Thin scheduler: every USAGE_RETENTION_INTERVAL_MS (and once at start), one tick of the retention service. */
@Injectable()
export class UsageRetentionScheduler extends LeasedIntervalJob {
  constructor(
    retention: UsageRetentionService,
    lease: JobLeaseService,
    registry: SchedulerRegistry,
    @Inject(usageConfig.KEY) config: ConfigType<typeof usageConfig>,
  ) {
    super(
      { name: 'usage-raw-retention', label: 'usage retention', lease: RETENTION_LEASE, intervalMs: config.retention.intervalMs, runAtStart: true, enabled: retention.enabled, tick: () => retention.tick() },
      lease,
      registry,
    );
  }
}
