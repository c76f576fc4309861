import { Inject, Injectable } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { SchedulerRegistry } from '@nestjs/schedule';
import { quotasConfig } from '../../config/quotas.config';
import { JobLeaseService } from '../../database/job-lease.service';
import { LeasedIntervalJob } from '../../database/leased-interval-job';
import { EVALUATION_LEASE, QuotaEvaluationService } from './quota-evaluation.service';

/** Thin scheduler: every QUOTA_EVALUATION_INTERVAL_S, one tick of the evaluation service. */
@Injectable()
export class QuotaEvaluationScheduler extends LeasedIntervalJob {
  constructor(
    evaluation: QuotaEvaluationService,
    lease: JobLeaseService,
    registry: SchedulerRegistry,
    @Inject(quotasConfig.KEY) config: ConfigType<typeof quotasConfig>,
  ) {
    super(
      { name: 'quota-evaluation', label: 'quota evaluation', lease: EVALUATION_LEASE, intervalMs: config.evaluationIntervalS * 1000, runAtStart: false, enabled: true, tick: () => evaluation.tick() },
      lease,
      registry,
    );
  }
}
