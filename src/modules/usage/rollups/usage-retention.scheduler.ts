import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { SchedulerRegistry } from '@nestjs/schedule';
import { usageConfig } from '../../../config/usage.config';
import { JobLeaseService } from '../../../database/job-lease.service';
import { RETENTION_LEASE, UsageRetentionService } from './usage-retention.service';

const JOB = 'usage-raw-retention';

/** Thin scheduler: every USAGE_RETENTION_INTERVAL_MS (and once at start), one tick of the retention service. */
@Injectable()
export class UsageRetentionScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(UsageRetentionScheduler.name);
  private running: Promise<unknown> | null = null;

  constructor(
    private readonly retention: UsageRetentionService,
    private readonly lease: JobLeaseService,
    private readonly registry: SchedulerRegistry,
    @Inject(usageConfig.KEY) private readonly config: ConfigType<typeof usageConfig>,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.retention.enabled) return;
    const timer = setInterval(() => this.runOnce(), this.config.retention.intervalMs);
    timer.unref();
    this.registry.addInterval(JOB, timer);
    this.runOnce();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.registry.doesExist('interval', JOB)) this.registry.deleteInterval(JOB);
    await this.running;
    if (this.retention.enabled) await this.lease.release(RETENTION_LEASE).catch(() => undefined);
  }

  private runOnce(): void {
    if (this.running) return; // a long purge is not overlapped by the next tick
    this.running = this.retention
      .tick()
      .catch((err: unknown) => this.logger.error(`usage retention failed: ${(err as Error).message}`))
      .finally(() => (this.running = null));
  }
}
