import { Module } from '@nestjs/common';
import { AlertService } from './alerts/alert.service';
import { JobLeaseModule } from '../../database/job-lease.module';
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
  imports: [JobLeaseModule],
  controllers: [QuotasController],
  providers: [
    // The one place alerting is hooked in: AlertService comes from the global AlertsModule.
    { provide: QUOTA_ALERTS, useExisting: AlertService },
    QuotaRulesService,
    QuotaSpendReader,
    QuotaCounterStore,
    QuotaMetrics,
    QuotaEvaluationService,
    QuotaEvaluationScheduler,
  ],
  exports: [QuotaRulesService, QuotaCounterStore, QuotaMetrics, QUOTA_ALERTS, QuotaEvaluationService, JobLeaseModule],
})
export class QuotasModule {}
