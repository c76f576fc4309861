import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { quotasConfig } from '../../config/quotas.config';
import { nanosToUsdExact } from '../../common/money';
import { UsageRecorder } from '../usage/usage-recorder.service';
import { JobLeaseService } from '../../database/job-lease.service';
import { alertDedupKey, buildAlert, percentOf } from './quota-alert';
import { QUOTA_ALERTS, QuotaAlerts } from './quota-alerts.port';
import { QuotaCounterStore } from './quota-counter.store';
import { QuotaMetrics } from './quota-metrics.service';
import { QuotaRule, QuotaScope, scopeKey } from './quota-rule';
import { QuotaRulesService } from './quota-rules.service';
import { QuotaSpendReader } from './quota-spend.reader';
import { WindowBounds, windowAt } from './quota-window';

export const EVALUATION_LEASE = 'quota-evaluation';

/** One rule's spend for one scope value in its current window. */
export interface QuotaSnapshotEntry {
  rule: QuotaRule;
  scope: QuotaScope;
  bounds: WindowBounds;
  nanos: bigint;
  tokens: bigint;
  percent: number;
}

export interface FiredAlert {
  rule_id: string;
  scope: QuotaScope;
  threshold: number;
  percent: number;
  /** False for lower thresholds passed together with a higher one (stored, not sent). */
  notified: boolean;
  alert_id: string;
}

export interface EvaluationResult {
  evaluated_at: string;
  /** False when another replica holds the evaluation lease (scheduled ticks only). */
  evaluated: boolean;
  lease_owner: string | null;
  rules: number;
  scope_values: number;
  fired: FiredAlert[];
  resolved: number;
  resent: number;
}

/**
 * Quota evaluation: each rule's spend per scope value in its current window, from `llm_usage`,
 * and the alerts of the thresholds it has crossed (stored once per rule, scope value, threshold
 * and window by the AlertService, so neither a second evaluation nor a restart repeats them).
 */
/** How long an evaluation waits for this process's queued usage to be written before it reads spend. */
const SNAPSHOT_FLUSH_WAIT_MS = 5_000;

@Injectable()
export class QuotaEvaluationService {
  private readonly logger = new Logger(QuotaEvaluationService.name);

  constructor(
    private readonly rules: QuotaRulesService,
    private readonly spend: QuotaSpendReader,
    private readonly metrics: QuotaMetrics,
    private readonly lease: JobLeaseService,
    private readonly counters: QuotaCounterStore,
    private readonly recorder: UsageRecorder,
    @Inject(quotasConfig.KEY) private readonly config: ConfigType<typeof quotasConfig>,
    @Optional() @Inject(QUOTA_ALERTS) private readonly alerts: QuotaAlerts | null,
  ) {}

  /**
   * The scheduled tick: every replica refreshes its gauges; only the holder of the evaluation
   * lease raises and sweeps alerts.
   */
  async tick(now = new Date()): Promise<EvaluationResult> {
    const ttlMs = Math.ceil(this.config.evaluationIntervalS * 1000 * 1.5);
    if (await this.lease.acquire(EVALUATION_LEASE, ttlMs, now.getTime())) return this.evaluate(now);
    const snapshot = await this.snapshot(now);
    this.updateGauges(snapshot);
    const holder = await this.lease.holder(EVALUATION_LEASE);
    return {
      evaluated_at: now.toISOString(),
      evaluated: false,
      lease_owner: holder?.owner ?? null,
      rules: new Set(snapshot.map((e) => e.rule.id)).size,
      scope_values: snapshot.length,
      fired: [],
      resolved: 0,
      resent: 0,
    };
  }

  /** Evaluates every rule now (also on demand, POST /api/v1/quotas/evaluate). */
  async evaluate(now = new Date()): Promise<EvaluationResult> {
    const snapshot = await this.snapshot(now);
    this.updateGauges(snapshot);
    const fired: FiredAlert[] = [];
    if (this.alerts) {
      for (const entry of snapshot) {
        try {
          fired.push(...(await this.raiseCrossed(entry, now)));
        } catch (err) {
          this.logger.error(`could not raise the alerts of quota rule "${entry.rule.id}": ${(err as Error).message}`);
        }
      }
    }
    for (const e of snapshot) {
      if (e.rule.action !== 'block') continue;
      await this.counters
        .catchUp(e.rule, e.scope, e.bounds, now.getTime(), e)
        .catch((err: unknown) => this.logger.warn(`could not bring quota rule "${e.rule.id}" up to recorded usage: ${(err as Error).message}`));
    }
    try {
      await this.counters.prune(now.getTime(), (await this.rules.list()).map((r) => r.id));
    } catch (err) {
      this.logger.warn(`could not prune old quota counters: ${(err as Error).message}`);
    }
    let swept = { resolved: 0, resent: 0 };
    if (this.alerts) {
      try {
        swept = await this.alerts.sweep(now);
      } catch (err) {
        this.logger.error(`alert sweep failed: ${(err as Error).message}`);
      }
    }
    return {
      evaluated_at: now.toISOString(),
      evaluated: true,
      lease_owner: this.lease.owner,
      rules: (await this.rules.list()).length,
      scope_values: snapshot.length,
      fired,
      ...swept,
    };
  }

  /** Spend of every rule and scope value in its current window. */
  async snapshot(now = new Date()): Promise<QuotaSnapshotEntry[]> {
    // Calls still queued in this process count, if they can be written soon: while the database is
    // down the queue waits for it, and the evaluation goes on to answer 503 rather than hang with it
    // (what is still queued is counted by the next evaluation).
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.recorder.flush(), new Promise<void>((resolve) => (timer = setTimeout(resolve, SNAPSHOT_FLUSH_WAIT_MS)))]).finally(() => clearTimeout(timer));
    const out: QuotaSnapshotEntry[] = [];
    for (const rule of await this.rules.list()) {
      const bounds = windowAt(rule.window, now.getTime(), this.config.timeZone);
      for (const s of await this.spend.spendByScope(rule, bounds, now.getTime())) {
        out.push({ rule, scope: s.scope, bounds, nanos: s.nanos, tokens: s.tokens, percent: percentOf(rule, s.nanos, s.tokens) });
      }
    }
    return out;
  }

  private async raiseCrossed(entry: QuotaSnapshotEntry, now: Date): Promise<FiredAlert[]> {
    const crossed = entry.rule.thresholds.filter((t) => entry.percent >= t);
    if (crossed.length === 0) return [];
    const highest = Math.max(...crossed);
    const fired: FiredAlert[] = [];
    // Highest first: it carries the notification; lower ones passed at the same time are stored silently.
    for (const threshold of [...crossed].sort((a, b) => b - a)) {
      const notified = threshold === highest;
      const { alertId, created } = await this.alerts!.raise({
        dedupKey: alertDedupKey(entry.rule, entry.scope, threshold, entry.bounds),
        alert: buildAlert(entry.rule, entry.scope, entry.bounds, entry, threshold),
        notify: notified ? entry.rule.notify : [],
        now,
      });
      if (created) {
        fired.push({ rule_id: entry.rule.id, scope: entry.scope, threshold, percent: entry.percent, notified, alert_id: alertId });
        this.logger.log(
          `quota rule "${entry.rule.id}" (${scopeKey(entry.scope) || 'global'}) passed ${threshold} %: ` +
            `${entry.rule.limitNanos !== null ? `${nanosToUsdExact(entry.nanos)} of ${nanosToUsdExact(entry.rule.limitNanos)} USD` : `${entry.tokens} of ${entry.rule.limitTokens} tokens`}`,
        );
      }
    }
    return fired;
  }

  private updateGauges(snapshot: QuotaSnapshotEntry[]): void {
    this.metrics.setSpend(snapshot.map((e) => ({ rule: e.rule, nanos: e.nanos })));
  }
}
