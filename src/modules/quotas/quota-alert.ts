import { nanosToUsdExact } from '../../common/money';
import type { CostAlert } from '../../plugins/sdk';
import { QuotaRule, QuotaScope, scopeKey } from './quota-rule';
import { WindowBounds } from './quota-window';

/** Spend as a percentage of the limit (the higher of money and tokens), two decimals. */
export function percentOf(rule: QuotaRule, nanos: bigint, tokens: bigint): number {
  const parts: number[] = [];
  if (rule.limitNanos !== null) parts.push(ratio(nanos, rule.limitNanos));
  if (rule.limitTokens !== null) parts.push(ratio(tokens, BigInt(rule.limitTokens)));
  return Math.max(0, ...parts);
}

function ratio(spent: bigint, limit: bigint): number {
  if (limit === 0n) return spent > 0n ? 100 : 0;
  return Number((spent * 10_000n) / limit) / 100;
}

/** Once per rule, scope value, threshold and window (the AlertService stores it uniquely). */
export function alertDedupKey(rule: QuotaRule, scope: QuotaScope, threshold: number, bounds: WindowBounds): string {
  return `${rule.id}|${scopeKey(scope)}|${threshold}|${bounds.alertStart ?? bounds.key}`;
}

export function buildAlert(
  rule: QuotaRule,
  scope: QuotaScope,
  bounds: WindowBounds,
  spend: { nanos: bigint; tokens: bigint },
  threshold: number,
): Omit<CostAlert, 'id' | 'kind' | 'state' | 'firedAt' | 'resolvedAt'> {
  return {
    ruleId: rule.id,
    scope: { ...scope },
    thresholdPercent: threshold,
    percent: percentOf(rule, spend.nanos, spend.tokens),
    spendUsd: rule.limitNanos !== null ? nanosToUsdExact(spend.nanos) : null,
    limitUsd: rule.limitNanos !== null ? nanosToUsdExact(rule.limitNanos) : null,
    spendTokens: rule.limitTokens !== null ? Number(spend.tokens) : null,
    limitTokens: rule.limitTokens,
    window: { kind: bounds.kind, start: bounds.alertStart, end: bounds.alertEnd },
    action: rule.action,
  };
}
