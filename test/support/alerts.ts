import type { RaiseAlertInput } from '../../src/modules/quotas/alerts/alert.service';

/** A quota alert as quota evaluation raises it: rule alice-monthly at 80 % of $50 in November 2026. */
export function quotaAlert(overrides: Partial<RaiseAlertInput['alert']> = {}, dedupKey?: string): RaiseAlertInput {
  const alert: RaiseAlertInput['alert'] = {
    ruleId: 'alice-monthly',
    scope: { user_id: 'alice' },
    thresholdPercent: 80,
    percent: 82.4,
    spendUsd: '41.200000000',
    limitUsd: '50.000000000',
    spendTokens: null,
    limitTokens: null,
    window: { kind: 'month', start: '2026-11-01T00:00:00.000Z', end: '2026-12-01T00:00:00.000Z' },
    action: 'block',
    ...overrides,
  };
  return {
    dedupKey: dedupKey ?? `${alert.ruleId}|${JSON.stringify(alert.scope)}|${alert.thresholdPercent}|${alert.window.start}`,
    alert,
    notify: null,
    now: new Date('2026-11-20T10:00:00.000Z'),
  };
}
