import { Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { In } from 'typeorm';
import { decodeKeysetCursor, encodeKeysetCursor } from '../../../common/keyset-cursor';
import type { CostAlert } from '../../../plugins/sdk';
import { AlertDispatcher, AttemptOutcome } from './alert-dispatcher.service';
import { toCostAlert, toPayload } from './alert-mapping';
import { AlertBadRequestException } from './alerts.exceptions';
import { AlertDelivery } from './entities/alert-delivery.entity';
import { Alert, AlertState } from './entities/alert.entity';
import { AlertTables } from './alert-tables';

export interface RaiseAlertInput {
  dedupKey: string;
  alert: Omit<CostAlert, 'id' | 'kind' | 'state' | 'firedAt' | 'resolvedAt'>;
  notify: readonly string[] | null;
  now?: Date;
}

export interface AlertListQuery {
  rule?: string;
  state?: AlertState;
  kind?: CostAlert['kind'];
  limit: number;
  cursor?: string;
}

export interface AlertWithDeliveries {
  alert: Alert;
  notify: string[];
  deliveries: AlertDelivery[];
}

const DEDUP_KEY_MAX = 512;

/**
 * Alert state: raising (once per dedup key, across replicas and restarts), resolving when the
 * window ends, re-sending to notifiers that forget, listing, and test notifications. Delivery
 * itself is the dispatcher's.
 */
@Injectable()
export class AlertService {
  private readonly logger = new Logger(AlertService.name);

  constructor(
    private readonly tables: AlertTables,
    private readonly dispatcher: AlertDispatcher,
  ) {}

  /**
   * Records the alert at most once per `dedupKey` (rule | scope value | threshold | window start),
   * across replicas and restarts (a unique key in the database, insert-if-absent). When this call
   * created it, it is dispatched in the background to `notify` (null = every configured notifier;
   * [] = store it without notifying, e.g. lower thresholds passed together with a higher one),
   * each delivery retried with backoff and every attempt stored.
   */
  async raise(input: RaiseAlertInput): Promise<{ alertId: string; created: boolean }> {
    if (!input.dedupKey || input.dedupKey.length > DEDUP_KEY_MAX) {
      throw new Error(`dedupKey must be 1-${DEDUP_KEY_MAX} characters`);
    }
    // A task window has no start of its own: stored as 0, given back as null (see toCostAlert).
    const windowStartMs = input.alert.window.start === null ? 0 : Date.parse(input.alert.window.start);
    const windowEndMs = input.alert.window.end ? Date.parse(input.alert.window.end) : null;
    if (Number.isNaN(windowStartMs) || (windowEndMs !== null && Number.isNaN(windowEndMs))) {
      throw new Error(`Alert ${input.dedupKey}: window start and end must be ISO 8601 instants`);
    }
    const now = input.now ?? new Date();
    const configured = this.notifierNames();
    const unknown = (input.notify ?? []).filter((n) => !configured.includes(n));
    if (unknown.length > 0) this.logger.warn(`Rule ${input.alert.ruleId} names notifiers that are not configured: ${unknown.join(', ')}`);
    const notify = input.notify === null ? configured : [...new Set(input.notify)].filter((n) => configured.includes(n));
    const id = randomUUID();
    const token = notify.length > 0 ? randomUUID() : null;
    const a = input.alert;
    await this.tables.alerts
      .createQueryBuilder()
      .insert()
      .into(Alert)
      .values({
        id,
        dedupKey: input.dedupKey,
        kind: 'quota_threshold',
        ruleId: a.ruleId,
        scope: JSON.stringify(a.scope),
        thresholdPercent: a.thresholdPercent,
        windowStartMs,
        windowEndMs,
        payload: JSON.stringify(toPayload(a)),
        state: 'firing',
        notify: JSON.stringify(notify),
        firedAtMs: now.getTime(),
        resolvedAtMs: null,
        dispatchState: token ? 'pending' : 'done',
        dispatchToken: token,
        // Leases run on the wall clock (they coordinate processes), whatever `now` the caller evaluates at.
        dispatchLeaseUntilMs: token ? Date.now() + this.dispatcher.leaseMs() : null,
      })
      // INSERT OR IGNORE on SQLite, ON CONFLICT DO NOTHING on PostgreSQL: the unique dedup_key decides.
      .orIgnore()
      .execute();
    const row = await this.tables.alerts.findOne({ where: { dedupKey: input.dedupKey }, select: { id: true } });
    if (!row) throw new Error(`Alert with dedup key ${input.dedupKey} was neither inserted nor found`);
    const created = row.id === id;
    if (created && token) this.dispatcher.start(id, token);
    return { alertId: row.id, created };
  }

  /**
   * Called on every evaluation tick: resolves firing alerts whose window ended at or before `now`
   * (sends `state: 'resolved'` to the notifiers that got the firing one), and re-sends firing
   * alerts to notifiers with `resendWhileFiring` (Alertmanager). Also takes over dispatches left
   * pending by a stopped process. Deliveries run in the background: this never waits on a notifier.
   */
  async sweep(now: Date): Promise<{ resolved: number; resent: number }> {
    const nowMs = now.getTime();
    const due = await this.tables.alerts
      .createQueryBuilder('a')
      .select(['a.id'])
      .where("a.state = 'firing' AND a.kind = 'quota_threshold'")
      .andWhere('a.window_end_ms IS NOT NULL AND a.window_end_ms <= :nowMs', { nowMs })
      .getMany();
    let resolved = 0;
    for (const { id } of due) {
      const token = randomUUID();
      // Conditional on still firing: with several replicas sweeping, one resolves (and notifies).
      const res = await this.tables.alerts
        .createQueryBuilder()
        .update(Alert)
        .set({ state: 'resolved', resolvedAtMs: nowMs, dispatchState: 'pending', dispatchToken: token, dispatchLeaseUntilMs: Date.now() + this.dispatcher.leaseMs() })
        .where("id = :id AND state = 'firing'", { id })
        .execute();
      if (res.affected === 1) {
        resolved++;
        this.dispatcher.start(id, token);
      }
    }

    let resent = 0;
    const resenders = this.dispatcher.notifierNames().filter((n) => this.dispatcher.notifier(n)?.resendWhileFiring);
    if (resenders.length > 0) {
      // Only after the first dispatch is over: until then it is still being delivered (and retried).
      const firing = await this.tables.alerts.findBy({ state: 'firing', kind: 'quota_threshold', dispatchState: 'done' });
      for (const row of firing) {
        const alert = toCostAlert(row);
        for (const name of (JSON.parse(row.notify) as string[]).filter((n) => resenders.includes(n))) {
          resent++;
          // Attempt 0 marks a re-send; only failed ones are stored (a row a minute per alert otherwise).
          this.dispatcher.resend(this.dispatcher.notifier(name)!, alert);
        }
      }
    }
    await this.dispatcher.resumePending();
    return { resolved, resent };
  }

  /** Names of the configured notifiers (for validating a rule's `notify`). */
  notifierNames(): string[] {
    return this.dispatcher.notifierNames();
  }

  /** Alerts newest first, each with its delivery attempts (oldest first). */
  async list(query: AlertListQuery): Promise<{ items: AlertWithDeliveries[]; nextCursor: string | null }> {
    const qb = this.tables.alerts.createQueryBuilder('a');
    if (query.rule !== undefined) qb.andWhere('a.rule_id = :rule', { rule: query.rule });
    if (query.state !== undefined) qb.andWhere('a.state = :state', { state: query.state });
    if (query.kind !== undefined) qb.andWhere('a.kind = :kind', { kind: query.kind });
    if (query.cursor !== undefined) {
      const c = decodeKeysetCursor(query.cursor);
      if (!c) throw new AlertBadRequestException('cursor must be the next_cursor of a previous page of GET /api/v1/alerts');
      qb.andWhere('(a.fired_at_ms < :ms OR (a.fired_at_ms = :ms AND a.id < :id))', { ms: c.ms, id: c.id });
    }
    const rows = await qb
      .orderBy('a.fired_at_ms', 'DESC')
      .addOrderBy('a.id', 'DESC')
      .take(query.limit + 1)
      .getMany();
    const page = rows.slice(0, query.limit);
    const deliveries = page.length
      ? await this.tables.deliveries.find({ where: { alertId: In(page.map((r) => r.id)) }, order: { startedAtMs: 'ASC', attempt: 'ASC' } })
      : [];
    return {
      items: page.map((alert) => ({
        alert,
        notify: JSON.parse(alert.notify) as string[],
        deliveries: deliveries.filter((d) => d.alertId === alert.id),
      })),
      nextCursor: rows.length > query.limit ? encodeKeysetCursor({ ms: page[page.length - 1].firedAtMs, id: page[page.length - 1].id }) : null,
    };
  }

  /**
   * Sends a test notification through each configured notifier at once (one attempt each, bounded
   * by the delivery timeout) and reports each result. Stored as an alert of kind `test`.
   */
  async sendTest(now = new Date()): Promise<{ alertId: string; results: AttemptOutcome[] }> {
    const id = randomUUID();
    const iso = now.toISOString();
    const names = this.notifierNames();
    await this.tables.alerts.insert({
      id,
      dedupKey: `test:${id}`,
      kind: 'test',
      ruleId: 'test',
      scope: '{}',
      thresholdPercent: 0,
      windowStartMs: now.getTime(),
      windowEndMs: null,
      payload: JSON.stringify({
        scope: {}, percent: 0, spendUsd: '0.000000000', limitUsd: null, spendTokens: null, limitTokens: null,
        window: { kind: 'day', start: iso, end: null }, action: 'alert',
      }),
      // Stored as resolved: a test never fires for real, so sweeps leave it alone.
      state: 'resolved',
      notify: JSON.stringify(names),
      firedAtMs: now.getTime(),
      resolvedAtMs: now.getTime(),
      dispatchState: 'done',
      dispatchToken: null,
      dispatchLeaseUntilMs: null,
    });
    const alert: CostAlert = { ...toCostAlert((await this.tables.alerts.findOneBy({ id }))!), state: 'firing', resolvedAt: null };
    const results = await Promise.all(names.map((name) => this.dispatcher.attempt(this.dispatcher.notifier(name)!, alert, 'test', 1)));
    return { alertId: id, results };
  }
}
