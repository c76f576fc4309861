import type { PluginModuleBase, PluginOptions } from './version';

/**
 * A cost alert as every notifier receives it: a quota rule crossed one of its thresholds for one
 * scope value in one window (or, for `kind: 'test'`, a test notification). Money is exact:
 * amounts are decimal strings in USD with 9 decimals, never floats.
 */
export interface CostAlert {
  /** Stable id of this alert (the same id on its `firing` and `resolved` notifications). */
  readonly id: string;
  readonly kind: 'quota_threshold' | 'test';
  readonly state: 'firing' | 'resolved';
  /** The quota rule, e.g. `alice-monthly`. */
  readonly ruleId: string;
  /**
   * The scope value the spend was counted for: the rule's scope with `*` replaced by the value
   * (`{ user_id: 'alice' }`); empty for a global rule.
   */
  readonly scope: Readonly<{ user_id?: string; model?: string; task_id?: string }>;
  /** The highest threshold crossed, in percent of the limit (50, 80, 100, ...). */
  readonly thresholdPercent: number;
  /**
   * Spend so far in the window as a percentage of the limit (may pass 100). A block rule's 100 %
   * alert fired by a refused call can show less than 100: what was left could not cover the
   * refused call's worst-case cost.
   */
  readonly percent: number;
  /** Exact spend in the window, USD with 9 decimals; null for a rule limited only by tokens. */
  readonly spendUsd: string | null;
  readonly limitUsd: string | null;
  readonly spendTokens: number | null;
  readonly limitTokens: number | null;
  /**
   * The window the spend was counted over (ISO 8601 instants, end exclusive). A `task` window is the
   * task's whole life: start and end are null.
   */
  readonly window: Readonly<{ kind: 'task' | 'day' | 'week' | 'month' | 'rolling'; start: string | null; end: string | null }>;
  /** What the rule does at 100 %: only alert, or block further calls. */
  readonly action: 'alert' | 'block';
  /** When the threshold was crossed (ISO 8601). */
  readonly firedAt: string;
  /** When the alert resolved (its window rolled over), for `state: 'resolved'`. */
  readonly resolvedAt: string | null;
}

/**
 * A destination for cost alerts (Slack, email, Alertmanager, a webhook, ...).
 *
 * The dispatcher calls `send` off the evaluation's path, retries a failed delivery with backoff
 * and stores every attempt; a notifier that throws or hangs only affects its own deliveries.
 * Never put secrets (webhook URLs, passwords, tokens) in thrown messages: they are stored.
 */
export interface AlertNotifier {
  /** Short stable name, used in rules' `notify` lists, logs, metrics and stored deliveries. */
  readonly name: string;
  /** Deliver one alert (firing or resolved). Throwing marks this attempt failed. */
  send(alert: CostAlert): Promise<void>;
  /**
   * True for notifiers whose receiver forgets alerts that are not repeated (Alertmanager):
   * firing alerts are sent again on every evaluation while they are active.
   */
  readonly resendWhileFiring?: boolean;
  /** Called once on shutdown. */
  close?(): Promise<void>;
}

/** Injection token of the array of configured notifiers (built-in and plugins). */
export const ALERT_NOTIFIERS = Symbol('ALERT_NOTIFIERS');

/** An alert notifier plugin module, named in ALERT_NOTIFIER_PLUGINS. */
export interface AlertNotifierPluginModule extends PluginModuleBase {
  createAlertNotifier(options: PluginOptions): AlertNotifier | Promise<AlertNotifier>;
}
