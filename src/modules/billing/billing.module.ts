import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { JobLeaseModule } from '../../database/job-lease.module';
import { LlmUsage } from '../usage/entities/llm-usage.entity';
import { BillingExportScheduler } from './billing-export.scheduler';
import { BillingMetrics } from './billing-metrics.service';
import { BillingExportService } from './billing-export.service';
import { BillingController } from './billing.controller';
import { BillingModuleBase } from './billing.module-definition';
import { BillingExport } from './entities/billing-export.entity';
import { ExportDeliveryService } from './export-delivery.service';
import { ScheduledExportsService } from './scheduled-exports.service';
import { UsageRecordsCsvController } from './usage-records-csv.controller';
import { UsageRecordsCsvService } from './usage-records-csv.service';

/**
 * Billing exports (scheduled and on demand) and the raw usage CSV. `BillingModule.forRoot({
 * destinations: [...] })` in AppModule lists the built-in destinations; plugins come from
 * BILLING_EXPORT_DESTINATION_PLUGINS.
 */
@Module({
  imports: [TypeOrmModule.forFeature([BillingExport, LlmUsage]), JobLeaseModule],
  controllers: [BillingController, UsageRecordsCsvController],
  providers: [BillingMetrics, BillingExportService, ExportDeliveryService, ScheduledExportsService, BillingExportScheduler, UsageRecordsCsvService],
  exports: [BillingExportService, ScheduledExportsService],
})
export class BillingModule extends BillingModuleBase {}
