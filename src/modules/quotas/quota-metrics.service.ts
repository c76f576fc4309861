import { Inject, Injectable } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import type { MetricsRegistry } from '../metrics/metrics-registry.provider';
import { METRICS_REGISTRY } from '../metrics/metrics.constants';
import { nanosToUsd } from '../../common/money';
import { QuotaRule } from './quota-rule';

const GAUGE_LABELS = ['rule', 'user_id', 'model', 'task_id'] as const;

/**
 * Quota metrics. Gauges are labelled by rule, plus a scope label only where the rule names a value
 * itself: a "*" rule (or a task window) exports one series holding its highest scope value's spend,
 * never one per user or task.
 */
@Injectable()
export class QuotaMetrics {
  private readonly blocked: Counter<'rule'>;
  private readonly spend: Gauge<(typeof GAUGE_LABELS)[number]>;
  private readonly limit: Gauge<(typeof GAUGE_LABELS)[number]>;

  constructor(@Inject(METRICS_REGISTRY) registry: MetricsRegistry) {
    this.blocked = new Counter({
      name: 'llm_blocked_requests_total',
      help: 'LLM calls refused by a quota rule with action "block" (the provider was not called), by rule',
      labelNames: ['rule'],
      registers: [registry],
    });
    this.spend = new Gauge({
      name: 'quota_spend_usd',
      help: 'Spend in the current window of a quota rule, USD (for "*" rules: the highest scope value)',
      labelNames: GAUGE_LABELS,
      registers: [registry],
    });
    this.limit = new Gauge({
      name: 'quota_limit_usd',
      help: 'USD limit of a quota rule per scope value and window',
      labelNames: GAUGE_LABELS,
      registers: [registry],
    });
  }

  blockedCall(ruleId: string): void {
    this.blocked.inc({ rule: ruleId });
  }

  /** Replaces every gauge series with the given rules' spend (deleted rules disappear). */
  setSpend(entries: { rule: QuotaRule; nanos: bigint }[]): void {
    const highest = new Map<string, { rule: QuotaRule; nanos: bigint }>();
    for (const e of entries) {
      const prev = highest.get(e.rule.id);
      if (!prev || e.nanos > prev.nanos) highest.set(e.rule.id, e);
    }
    this.spend.reset();
    this.limit.reset();
    for (const { rule, nanos } of highest.values()) {
      if (rule.limitNanos === null) continue;
      const labels = {
        rule: rule.id,
        user_id: explicit(rule.scope.user_id),
        model: explicit(rule.scope.model),
        task_id: explicit(rule.scope.task_id),
      };
      this.spend.set(labels, nanosToUsd(nanos));
      this.limit.set(labels, nanosToUsd(rule.limitNanos));
    }
  }
}

function explicit(v: string | undefined): string {
  return v === undefined || v === '*' ? '' : v;
}
