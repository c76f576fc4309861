import type { CostAlert } from '../../../plugins/sdk';
import type { Alert, AlertPayload } from './entities/alert.entity';

/** The CostAlert a notifier is sent for a stored alert (in its stored state). */
export function toCostAlert(row: Alert): CostAlert {
  const payload = JSON.parse(row.payload) as AlertPayload;
  return {
    id: row.id,
    kind: row.kind,
    state: row.state,
    ruleId: row.ruleId,
    thresholdPercent: row.thresholdPercent,
    scope: payload.scope,
    percent: payload.percent,
    spendUsd: payload.spendUsd,
    limitUsd: payload.limitUsd,
    spendTokens: payload.spendTokens,
    limitTokens: payload.limitTokens,
    window: payload.window,
    action: payload.action,
    firedAt: new Date(row.firedAtMs).toISOString(),
    resolvedAt: row.resolvedAtMs === null ? null : new Date(row.resolvedAtMs).toISOString(),
  };
}

export function toPayload(alert: Omit<CostAlert, 'id' | 'kind' | 'state' | 'firedAt' | 'resolvedAt' | 'ruleId' | 'thresholdPercent'>): AlertPayload {
  return {
    scope: alert.scope,
    percent: alert.percent,
    spendUsd: alert.spendUsd,
    limitUsd: alert.limitUsd,
    spendTokens: alert.spendTokens,
    limitTokens: alert.limitTokens,
    window: alert.window,
    action: alert.action,
  };
}
