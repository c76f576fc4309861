import { Inject, Injectable, Logger } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { oneLine, withTimeout } from '../../common/plugin-loader';
import { billingConfig } from '../../config/billing.config';
import { EXPORT_DESTINATIONS, ExportDestination, FinishedExport } from '../../plugins/sdk';
import { PluginRegistry } from '../plugins/plugin-registry.service';
import { BillingMetrics } from './billing-metrics.service';
import type { StoredDeliveryResult } from './entities/billing-export.entity';

/**
 * Hands a finished export to every destination at once. A destination that throws, or has not
 * answered within BILLING_EXPORT_DELIVERY_TIMEOUT_MS, is logged with its name, counted in
 * billing_export_deliveries_total and stored as `failed` with its message; it never fails the
 * export or the others.
 */
@Injectable()
export class ExportDeliveryService {
  private readonly logger = new Logger(ExportDeliveryService.name);

  constructor(
    @Inject(EXPORT_DESTINATIONS) private readonly destinations: ExportDestination[],
    private readonly metrics: BillingMetrics,
    private readonly plugins: PluginRegistry,
    @Inject(billingConfig.KEY) private readonly config: ConfigType<typeof billingConfig>,
  ) {}

  async deliver(file: FinishedExport): Promise<StoredDeliveryResult[]> {
    const ms = this.config.deliveryTimeoutMs;
    const settled = await Promise.allSettled(
      this.destinations.map((d) => withTimeout(() => d.deliver(file), ms, `no answer within ${ms} ms (BILLING_EXPORT_DELIVERY_TIMEOUT_MS)`)),
    );
    return settled.map((s, i) => {
      const destination = this.destinations[i].name;
      const at = new Date().toISOString();
      this.metrics.delivery(destination, s.status === 'fulfilled' ? 'delivered' : 'failed');
      const handle = this.plugins.handle('destination', destination);
      if (s.status === 'fulfilled') {
        handle?.succeeded();
        return { destination, status: 'delivered', location: s.value?.location ?? null, detail: s.value?.detail ? { ...s.value.detail } : null, error: null, at };
      }
      const message = oneLine(s.reason);
      handle?.failed(message);
      this.logger.warn(`export destination "${destination}" failed for ${file.fileName}: ${message}`);
      return { destination, status: 'failed', location: null, detail: null, error: message.slice(0, 500), at };
    });
  }
}
