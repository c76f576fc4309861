import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { llmConfig } from '../../config/llm.config';
import { quotasConfig } from '../../config/quotas.config';
import { nanosToUsdExact } from '../../common/money';
import { LlmAdmissionPolicy, LlmAdmissionReservation, LlmCallIntent } from '../../plugins/sdk';
import { LlmBudgetExceededException, LlmUnpricedModelException } from '../llm/llm.exceptions';
import { alertDedupKey, buildAlert } from './quota-alert';
import { QUOTA_ALERTS, QuotaAlerts } from './quota-alerts.port';
import { CounterReservation, QuotaCounterStore } from './quota-counter.store';
import { QuotaMetrics } from './quota-metrics.service';
import { QuotaRule, QuotaScope, ruleApplies, scopeKey, scopeValueOf } from './quota-rule';
import { QuotaRulesService } from './quota-rules.service';
import { WindowBounds, windowAt } from './quota-window';

/**
 * Hard quota enforcement on the admission seam: before a call, its worst case (cost and tokens)
 * is reserved on the database counter of every applicable `block` rule; after it, the reservation
 * is settled with what the call really used. A refused call never reaches the provider.
 */
@Injectable()
export class QuotaAdmissionPolicy implements LlmAdmissionPolicy {
  readonly name = 'quotas';
  private readonly logger = new Logger(QuotaAdmissionPolicy.name);

  constructor(
    private readonly rules: QuotaRulesService,
    private readonly counters: QuotaCounterStore,
    private readonly metrics: QuotaMetrics,
    @Inject(quotasConfig.KEY) private readonly config: ConfigType<typeof quotasConfig>,
    @Inject(llmConfig.KEY) private readonly llm: ConfigType<typeof llmConfig>,
    @Optional() @Inject(QUOTA_ALERTS) private readonly alerts: QuotaAlerts | null,
  ) {}

  async admit(intent: LlmCallIntent): Promise<LlmAdmissionReservation | void> {
    const call = { userId: intent.userId, model: intent.model, taskId: intent.taskId };
    const applicable = (await this.rules.list()).filter((r) => r.action === 'block' && ruleApplies(r, call));
    if (applicable.length === 0) return;
    const money = applicable.find((r) => r.limitNanos !== null);
    if (intent.maxCostNanos === null && money && this.llm.unpricedUnderBudget !== 'allow') {
      throw new LlmUnpricedModelException(
        `LLM call refused: quota rule "${money.id}" limits spend, and model "${intent.model}" has no known price; ` +
          'add it to the pricing file, or set LLM_UNPRICED_UNDER_BUDGET=allow to let calls of unknown cost pass budgets',
        { ruleId: money.id, model: intent.model, provider: intent.provider },
      );
    }
    const nowMs = Date.now();
    const worstNanos = BigInt(intent.maxCostNanos ?? 0);
    const worstTokens = BigInt(intent.maxTokens ?? 0);
    const held: CounterReservation[] = [];
    try {
      for (const rule of applicable) {
        const scope = scopeValueOf(rule, call);
        const bounds = windowAt(rule.window, nowMs, this.config.timeZone);
        const out = await this.counters.reserve(rule, scope, bounds, nowMs, rule.limitNanos !== null ? worstNanos : 0n, rule.limitTokens !== null ? worstTokens : 0n);
        if (!out.ok) throw this.refuse(rule, scope, bounds, out, intent, worstNanos, worstTokens);
        held.push(out.reservation);
      }
    } catch (err) {
      await this.settleAll(held, 0n, 0n);
      throw err;
    }
    return {
      settle: (actualCostNanos, actual) => this.settleAll(held, BigInt(actualCostNanos ?? 0), BigInt(actual?.totalTokens ?? 0)),
    };
  }

  private async settleAll(held: CounterReservation[], nanos: bigint, tokens: bigint): Promise<void> {
    const now = Date.now();
    for (const r of held) {
      try {
        await this.counters.settle(r, nanos, tokens, now);
      } catch (err) {
        // Left unsettled, the reservation is released when it expires (QUOTA_RESERVATION_TTL_S).
        this.logger.error(`could not settle a reservation on quota rule "${r.ruleId}": ${(err as Error).message}`);
      }
    }
  }

  private refuse(
    rule: QuotaRule,
    scope: QuotaScope,
    bounds: WindowBounds,
    state: { spentNanos: bigint; reservedNanos: bigint; spentTokens: bigint; reservedTokens: bigint },
    intent: LlmCallIntent,
    worstNanos: bigint,
    worstTokens: bigint,
  ): LlmBudgetExceededException {
    this.metrics.blockedCall(rule.id);
    this.fireLimitAlert(rule, scope, bounds, { nanos: state.spentNanos, tokens: state.spentTokens });
    const where = `${scopeKey(scope) || 'all calls'}, ${describeWindow(bounds)}`;
    const parts: string[] = [];
    if (rule.limitNanos !== null) {
      parts.push(
        `spent ${nanosToUsdExact(state.spentNanos)} USD of its ${nanosToUsdExact(rule.limitNanos)} USD limit` +
          (state.reservedNanos > 0n ? ` (plus ${nanosToUsdExact(state.reservedNanos)} USD reserved by calls in flight)` : '') +
          ` and this ${intent.model} call could cost up to ${nanosToUsdExact(worstNanos)} USD`,
      );
    }
    if (rule.limitTokens !== null) {
      parts.push(
        `used ${state.spentTokens} of its ${rule.limitTokens} tokens` +
          (state.reservedTokens > 0n ? ` (plus ${state.reservedTokens} reserved by calls in flight)` : '') +
          ` and this call could use up to ${worstTokens}`,
      );
    }
    return new LlmBudgetExceededException(`LLM call refused by quota rule "${rule.id}" (${where}): ${parts.join('; ')}`, {
      ruleId: rule.id,
      scope,
      spentNanos: state.spentNanos.toString(),
      limitNanos: rule.limitNanos?.toString() ?? null,
    });
  }

  /** A refusal means the rule is at its limit now: its 100 % alert goes out at once, not at the next evaluation. */
  private fireLimitAlert(rule: QuotaRule, scope: QuotaScope, bounds: WindowBounds, spend: { nanos: bigint; tokens: bigint }): void {
    if (!this.alerts) return;
    this.alerts
      .raise({ dedupKey: alertDedupKey(rule, scope, 100, bounds), alert: buildAlert(rule, scope, bounds, spend, 100), notify: rule.notify })
      .catch((err: unknown) => this.logger.error(`could not raise the limit alert of quota rule "${rule.id}": ${(err as Error).message}`));
  }
}

function describeWindow(b: WindowBounds): string {
  if (b.kind === 'task') return 'task window';
  if (b.kind === 'rolling') return `rolling window since ${new Date(b.startMs!).toISOString()}`;
  return `${b.kind} window from ${b.alertStart}`;
}
