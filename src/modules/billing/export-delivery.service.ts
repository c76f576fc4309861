import { Inject, Injectable, Logger } from '@nestjs/common';
import { EXPORT_DESTINATIONS, ExportDestination, FinishedExport } from '../../plugins/sdk';
import { BillingMetrics } from './billing-metrics.service';
import type { StoredDeliveryResult } from './entities/billing-export.entity';

/**
 * Hands a finished export to every destination at once. A destination that throws is logged with
 * its name, counted in billing_export_deliveries_total and stored as `failed` with its message; it
 * never fails the export or the others.
 */
@Injectable()
export class ExportDeliveryService {
  private readonly logger = new Logger(ExportDeliveryService.name);

  constructor(
    @Inject(EXPORT_DESTINATIONS) private readonly destinations: ExportDestination[],
    private readonly metrics: BillingMetrics,
  ) {}

  async deliver(file: FinishedExport): Promise<StoredDeliveryResult[]> {
    const settled = await Promise.allSettled(this.destinations.map((d) => d.deliver(file)));
    return settled.map((s, i) => {
      const destination = this.destinations[i].name;
      const at = new Date().toISOString();
      this.metrics.delivery(destination, s.status === 'fulfilled' ? 'delivered' : 'failed');
      if (s.status === 'fulfilled') {
        return { destination, status: 'delivered', location: s.value?.location ?? null, detail: s.value?.detail ? { ...s.value.detail } : null, error: null, at };
      }
      const message = s.reason instanceof Error ? s.reason.message : String(s.reason);
      this.logger.warn(`export destination "${destination}" failed for ${file.fileName}: ${message}`);
      return { destination, status: 'failed', location: null, detail: null, error: message.slice(0, 500), at };
    });
  }
}
