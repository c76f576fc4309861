import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { SchedulerRegistry } from '@nestjs/schedule';
import { quotasConfig } from '../../config/quotas.config';
import { JobLeaseService } from '../../database/job-lease.service';
import { EVALUATION_LEASE, QuotaEvaluationService } from './quota-evaluation.service';

const JOB = 'quota-evaluation';

/** Thin scheduler: every QUOTA_EVALUATION_INTERVAL_S, one tick of the evaluation service. */
@Injectable()
export class QuotaEvaluationScheduler implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(QuotaEvaluationScheduler.name);
  private running: Promise<unknown> | null = null;

  constructor(
    private readonly evaluation: QuotaEvaluationService,
    private readonly lease: JobLeaseService,
    private readonly registry: SchedulerRegistry,
    @Inject(quotasConfig.KEY) private readonly config: ConfigType<typeof quotasConfig>,
  ) {}

  onApplicationBootstrap(): void {
    const timer = setInterval(() => this.runOnce(), this.config.evaluationIntervalS * 1000);
    timer.unref();
    this.registry.addInterval(JOB, timer);
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.registry.doesExist('interval', JOB)) this.registry.deleteInterval(JOB);
    await this.running;
    await this.lease.release(EVALUATION_LEASE).catch(() => undefined);
  }

  private runOnce(): void {
    if (this.running) return; // a slow evaluation is not overlapped by the next tick
    this.running = this.evaluation
      .tick()
      .catch((err: unknown) => this.logger.error(`quota evaluation failed: ${(err as Error).message}`))
      .finally(() => (this.running = null));
  }
}
