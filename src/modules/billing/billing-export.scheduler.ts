import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { SchedulerRegistry } from '@nestjs/schedule';
import { CronJob } from 'cron';
import { billingConfig } from '../../config/billing.config';
import { ScheduledExportsService } from './scheduled-exports.service';

/**
 * Thin scheduler: BILLING_DAILY_CRON and BILLING_MONTHLY_CRON (in BILLING_TIMEZONE) each call one
 * tick of ScheduledExportsService. Registered at boot (not with @Cron) because the schedules come
 * from config; an empty schedule registers nothing.
 */
@Injectable()
export class BillingExportScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(BillingExportScheduler.name);
  private readonly jobs: string[] = [];
  private readonly running = new Set<Promise<unknown>>();

  constructor(
    private readonly scheduled: ScheduledExportsService,
    private readonly registry: SchedulerRegistry,
    @Inject(billingConfig.KEY) private readonly config: ConfigType<typeof billingConfig>,
  ) {}

  onApplicationBootstrap(): void {
    for (const [kind, cron] of [['daily', this.config.dailyCron], ['monthly', this.config.monthlyCron]] as const) {
      if (!cron) continue;
      const name = `billing-export-${kind}`;
      const job = CronJob.from({ cronTime: cron, timeZone: this.config.timeZone, onTick: () => this.tick(kind), start: true, unrefTimeout: true });
      this.registry.addCronJob(name, job);
      this.jobs.push(name);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    for (const name of this.jobs) {
      if (this.registry.doesExist('cron', name)) {
        await this.registry.getCronJob(name).stop();
        this.registry.deleteCronJob(name);
      }
    }
    await Promise.allSettled([...this.running]);
  }

  private tick(kind: 'daily' | 'monthly'): void {
    const run = this.scheduled
      .runScheduled(kind)
      .catch((err: unknown) => this.logger.error(`scheduled ${kind} billing export failed: ${(err as Error).message}`))
      .finally(() => this.running.delete(run));
    this.running.add(run);
  }
}
