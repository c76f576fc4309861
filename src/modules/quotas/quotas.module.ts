import { Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { JobLeaseService } from './job-lease.service';
import { QUOTA_ALERTS } from './quota-alerts.port';
import { QuotaCounterStore } from './quota-counter.store';
import { QuotaEvaluationScheduler } from './quota-evaluation.scheduler';
import { QuotaEvaluationService } from './quota-evaluation.service';
import { QuotaMetrics } from './quota-metrics.service';
import { QuotaRulesService } from './quota-rules.service';
import { QuotaSpendReader } from './quota-spend.reader';
import { QuotasController } from './quotas.controller';

/**
 * Quota rules (QUOTAS_FILE and the admin API), their scheduled evaluation and status, and what
 * the quota admission policy needs. The policy itself is registered on the LLM admission seam in
 * AppModule: `LlmModule.forRoot({ admissionPolicies: [QuotaAdmissionPolicy], imports: [QuotasModule] })`.
 */
@Module({
  imports: [ScheduleModule.forRoot()],
  controllers: [QuotasController],
  providers: [
    // Alerting hook: replaced by `{ provide: QUOTA_ALERTS, useExisting: AlertService }` once the
    // alerts module is in; until then quotas enforce and report but raise no alerts.
    { provide: QUOTA_ALERTS, useValue: null },
    QuotaRulesService,
    QuotaSpendReader,
    QuotaCounterStore,
    QuotaMetrics,
    JobLeaseService,
    QuotaEvaluationService,
    QuotaEvaluationScheduler,
  ],
  exports: [QuotaRulesService, QuotaCounterStore, QuotaMetrics, QUOTA_ALERTS, QuotaEvaluationService, JobLeaseService],
})
export class QuotasModule {}
