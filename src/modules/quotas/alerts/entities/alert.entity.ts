import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { bigintToNumber } from '../../../../database/bigint.transformer';
import type { CostAlert } from '../../../../plugins/sdk';

export const ALERT_STATES = ['firing', 'resolved'] as const;
export type AlertState = (typeof ALERT_STATES)[number];
export const ALERT_KINDS = ['quota_threshold', 'test'] as const;

/** What every notifier is sent, minus what the row holds in its own columns. */
export type AlertPayload = Pick<
  CostAlert,
  'scope' | 'percent' | 'spendUsd' | 'limitUsd' | 'spendTokens' | 'limitTokens' | 'window' | 'action'
>;

/**
 * One row per alert. `dedup_key` is unique: raising is an insert-if-absent, so across replicas
 * and restarts one alert exists per rule, scope value, threshold and window.
 *
 * The dispatch columns make deliveries survive a stop: `dispatch_state` is `pending` until every
 * notifier of the current state has been delivered to or given up on; a process works on it only
 * while it holds the lease (`dispatch_token`, `dispatch_lease_until_ms`), taken with a conditional
 * UPDATE, so a pending dispatch left by a stopped process is resumed exactly once.
 */
@Entity({ name: 'alerts' })
@Index('idx_alerts_fired', ['firedAtMs', 'id'])
@Index('idx_alerts_dispatch', ['dispatchState', 'dispatchLeaseUntilMs'])
@Index('idx_alerts_state_window_end', ['state', 'windowEndMs'])
export class Alert {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id: string;

  @Column({ name: 'dedup_key', type: 'varchar', length: 512, unique: true })
  dedupKey: string;

  @Column({ type: 'varchar', length: 32 })
  kind: CostAlert['kind'];

  @Column({ name: 'rule_id', type: 'varchar', length: 128 })
  ruleId: string;

  /** The scope value as JSON (`{"user_id":"alice"}`), for filtering and display. */
  @Column({ type: 'varchar', length: 1024 })
  scope: string;

  @Column({ name: 'threshold_percent', type: 'integer' })
  thresholdPercent: number;

  @Column({ name: 'window_start_ms', type: 'bigint', transformer: bigintToNumber })
  windowStartMs: number;

  /** Null for windows without a fixed end (a task's). */
  @Column({ name: 'window_end_ms', type: 'bigint', nullable: true, transformer: bigintToNumber })
  windowEndMs: number | null;

  /** AlertPayload as JSON: the exact amounts (decimal strings) as they were when the alert fired. */
  @Column({ type: 'text' })
  payload: string;

  @Column({ type: 'varchar', length: 16 })
  state: AlertState;

  /** Names of the notifiers this alert goes to (JSON array), fixed when it was raised. */
  @Column({ type: 'text' })
  notify: string;

  @Column({ name: 'fired_at_ms', type: 'bigint', transformer: bigintToNumber })
  firedAtMs: number;

  @Column({ name: 'resolved_at_ms', type: 'bigint', nullable: true, transformer: bigintToNumber })
  resolvedAtMs: number | null;

  @Column({ name: 'dispatch_state', type: 'varchar', length: 16 })
  dispatchState: 'pending' | 'done';

  @Column({ name: 'dispatch_token', type: 'varchar', length: 36, nullable: true })
  dispatchToken: string | null;

  @Column({ name: 'dispatch_lease_until_ms', type: 'bigint', nullable: true, transformer: bigintToNumber })
  dispatchLeaseUntilMs: number | null;
}
