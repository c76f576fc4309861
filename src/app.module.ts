import { DynamicModule, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { ScheduleModule } from '@nestjs/schedule';
import { alertsConfig } from './config/alerts.config';
import { appConfig } from './config/app.config';
import { authConfig } from './config/auth.config';
import { billingConfig } from './config/billing.config';
import { databaseConfig } from './config/database.config';
import { validateEnv } from './config/env.validation';
import { llmConfig } from './config/llm.config';
import { metricsConfig } from './config/metrics.config';
import { pluginsConfig } from './config/plugins.config';
import { quotasConfig } from './config/quotas.config';
import { usageConfig } from './config/usage.config';
import { DatabaseModule } from './database/database.module';
import { AuthModule } from './modules/auth/auth.module';
import { BillingModule } from './modules/billing/billing.module';
import { DashboardModule } from './modules/dashboard/dashboard.module';
import { GatewayModule } from './modules/gateway/gateway.module';
import { HealthModule } from './modules/health/health.module';
import { LlmModule } from './modules/llm/llm.module';
import { MetricsModule } from './modules/metrics/metrics.module';
import { PluginsModule } from './modules/plugins/plugins.module';
import { QuotaAdmissionPolicy } from './modules/quotas/quota-admission.policy';
import { QuotasModule } from './modules/quotas/quotas.module';
import { AlertsModule } from './modules/quotas/alerts/alerts.module';
import { BugFixAgent } from './modules/tasks/agent/bug-fix.agent';
import { TasksModule } from './modules/tasks/tasks.module';
import { UsageModule } from './modules/usage/usage.module';
import { LocalFolderExportDestination } from './plugins/destinations/local-folder.destination';
import { AlertmanagerNotifier } from './plugins/notifiers/alertmanager.notifier';
import { EmailNotifier } from './plugins/notifiers/email.notifier';
import { SlackNotifier } from './plugins/notifiers/slack.notifier';
import { WebhookNotifier } from './plugins/notifiers/webhook.notifier';
import { DatabaseUsageSink } from './plugins/sinks/database-usage.sink';
import { otlpUsageSinkParts } from './plugins/sinks/optional-sinks';
import { PrometheusUsageSink } from './plugins/sinks/prometheus-usage.sink';

/**
 * The usage pipeline with its sinks. The OTLP sink is listed (and its packages loaded) only when
 * OTLP_USAGE_SINK=true, decided when this file is loaded (main.ts reads .env first), as
 * ENABLE_OPENTELEMETRY is: off loads nothing.
 */
function usageModule(): Promise<DynamicModule> {
  const module = otlpUsageSinkParts().then((otlp) =>
    UsageModule.forRoot({
      sinks: [DatabaseUsageSink, PrometheusUsageSink, ...otlp.sinks],
      imports: [MetricsModule, ...otlp.imports],
    }),
  );
  // Nest awaits it only when it scans the modules (and reports a failure then); until then a
  // rejection must not count as unhandled and end the process with a stack trace.
  module.catch(() => undefined);
  return module;
}

@Module({
  imports: [
    ConfigModule.forRoot({
      isGlobal: true,
      cache: true,
      validate: validateEnv,
      load: [appConfig, databaseConfig, llmConfig, usageConfig, authConfig, metricsConfig, quotasConfig, alertsConfig, billingConfig, pluginsConfig],
    }),
    // Scheduled jobs (quota evaluation, billing exports) register their timers on its SchedulerRegistry.
    ScheduleModule.forRoot(),
    DatabaseModule,
    AuthModule,
    HealthModule,
    MetricsModule,
    // The one registry of sinks, notifiers, destinations and agents (global), and GET /api/v1/plugins.
    PluginsModule,
    usageModule(),
    QuotasModule,
    LlmModule.forRoot({ admissionPolicies: [QuotaAdmissionPolicy], imports: [QuotasModule] }),
    TasksModule.forRoot({ agents: [BugFixAgent] }),
    AlertsModule.forRoot({ notifiers: [SlackNotifier, EmailNotifier, AlertmanagerNotifier, WebhookNotifier] }),
    BillingModule.forRoot({ destinations: [LocalFolderExportDestination] }),
    DashboardModule,
    GatewayModule,
  ],
})
export class AppModule {}
