import { Inject, Injectable } from '@nestjs/common';
import { Counter } from 'prom-client';
import type { MetricsRegistry } from '../metrics/metrics-registry.provider';
import { METRICS_REGISTRY } from '../metrics/metrics.constants';

/** Billing export metrics on the app's registry (bounded labels: kind, destination name). */
@Injectable()
export class BillingMetrics {
  private readonly versions: Counter<'kind'>;
  private readonly deliveries: Counter<'destination' | 'result'>;

  constructor(@Inject(METRICS_REGISTRY) registry: MetricsRegistry) {
    this.versions = new Counter({
      name: 'billing_export_versions_total',
      help: 'Billing export files written (a new version of a period), by kind (daily, monthly, custom)',
      labelNames: ['kind'],
      registers: [registry],
    });
    this.deliveries = new Counter({
      name: 'billing_export_deliveries_total',
      help: 'Deliveries of export files to destinations, by destination and result (delivered, failed)',
      labelNames: ['destination', 'result'],
      registers: [registry],
    });
  }

  versionWritten(kind: string): void {
    this.versions.inc({ kind });
  }

  delivery(destination: string, result: 'delivered' | 'failed'): void {
    this.deliveries.inc({ destination, result });
  }
}
