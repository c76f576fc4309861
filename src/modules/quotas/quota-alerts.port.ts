import type { CostAlert } from '../../plugins/sdk';

/**
 * What quota evaluation and enforcement need from alerting: the contract of AlertService
 * (src/modules/quotas/alerts/alert.service.ts, issue 8). Quotas talk to it only through the
 * QUOTA_ALERTS token, bound in QuotasModule: this is the single point where alerting is hooked in.
 */
export interface QuotaAlerts {
  raise(input: {
    dedupKey: string;
    alert: Omit<CostAlert, 'id' | 'kind' | 'state' | 'firedAt' | 'resolvedAt'>;
    notify: readonly string[] | null;
    now?: Date;
  }): Promise<{ alertId: string; created: boolean }>;
  sweep(now: Date): Promise<{ resolved: number; resent: number }>;
  notifierNames(): string[];
}

/** Injection token of the QuotaAlerts implementation (null when no alerting module is present). */
export const QUOTA_ALERTS = Symbol('QUOTA_ALERTS');
