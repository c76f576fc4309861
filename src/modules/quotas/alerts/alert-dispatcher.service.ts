import { BeforeApplicationShutdown, Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { randomUUID } from 'node:crypto';
import { Counter } from 'prom-client';
import { alertsConfig } from '../../../config/alerts.config';
import { ALERT_NOTIFIERS, AlertNotifier, CostAlert } from '../../../plugins/sdk';
import { METRICS_REGISTRY } from '../../metrics/metrics.constants';
import { PluginRegistry } from '../../plugins/plugin-registry.service';
import type { MetricsRegistry } from '../../metrics/metrics-registry.provider';
import { toCostAlert } from './alert-mapping';
import { AlertDelivery, DeliveryState } from './entities/alert-delivery.entity';
import { Alert } from './entities/alert.entity';
import { AlertTables } from './alert-tables';

export interface AttemptOutcome {
  notifier: string;
  ok: boolean;
  error: string | null;
  httpStatus: number | null;
  durationMs: number;
}

class AttemptTimeout extends Error {}

/** Rejects when `promise` has not settled after `ms` (the promise itself cannot be cancelled). */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new AttemptTimeout(`no answer within ${ms} ms (attempt timed out)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

/**
 * Delivers alerts to notifiers in the background: each notifier separately, each attempt bounded
 * by a timeout, failed attempts retried with exponential backoff, every attempt stored in
 * alert_deliveries and counted in alert_notifications_total{notifier,result}.
 *
 * Deliveries outlive the process through the alert row's dispatch lease: a dispatch runs only
 * under a lease taken with a conditional UPDATE. On shutdown, backoff waits stop, attempts in
 * flight finish (bounded by the timeout), and the leases of unfinished dispatches are released, so
 * the next start (or another replica's next sweep) resumes them from the stored attempts. After a
 * crash the lease expires on its own (one full retry schedule) and the same happens.
 */
@Injectable()
export class AlertDispatcher implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(AlertDispatcher.name);
  private readonly notifications: Counter<'notifier' | 'result'>;
  private readonly byName: Map<string, AlertNotifier>;
  /** Dispatches this process runs, by lease token. */
  private readonly running = new Map<string, Promise<void>>();
  /** Single attempts started outside a dispatch (re-sends while firing), awaited at shutdown. */
  private readonly loose = new Set<Promise<unknown>>();
  private readonly stopping = new AbortController();

  constructor(
    private readonly tables: AlertTables,
    @Inject(ALERT_NOTIFIERS) private readonly notifiers: AlertNotifier[],
    @Inject(METRICS_REGISTRY) registry: MetricsRegistry,
    @Inject(alertsConfig.KEY) private readonly config: ConfigType<typeof alertsConfig>,
    private readonly plugins: PluginRegistry,
  ) {
    this.byName = new Map(notifiers.map((n) => [n.name, n]));
    this.notifications = new Counter({
      name: 'alert_notifications_total',
      help: 'Attempts to deliver cost alerts, by notifier and result (ok, failed, timeout)',
      labelNames: ['notifier', 'result'],
      registers: [registry],
    });
  }

  notifierNames(): string[] {
    return this.notifiers.map((n) => n.name);
  }

  notifier(name: string): AlertNotifier | undefined {
    return this.byName.get(name);
  }

  /**
   * How long a lease lasts: longer than one full retry schedule, so a live process never loses a
   * dispatch it is still working on, and a dead one's is taken over soon after.
   */
  leaseMs(): number {
    const { maxAttempts, timeoutMs } = this.config.delivery;
    let total = 30_000;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) total += timeoutMs + (attempt < maxAttempts ? this.backoffMs(attempt) : 0);
    return total;
  }

  /** Wait after failed attempt `attempt` (1-based). */
  backoffMs(attempt: number): number {
    const { backoffMs, backoffMaxMs } = this.config.delivery;
    return Math.min(backoffMaxMs, backoffMs * 2 ** (attempt - 1));
  }

  onApplicationBootstrap(): void {
    const names = this.notifierNames();
    this.logger.log(names.length > 0 ? `Alert notifiers: ${names.join(', ')}` : 'No alert notifier is configured: alerts are stored only');
    // Not awaited: the start does not wait on receivers; the resumed deliveries run in the background.
    void this.resumePending().catch((err) => this.logger.error(`Could not resume pending alert deliveries: ${(err as Error).message}`));
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopping.abort();
    const tokens = [...this.running.keys()];
    await Promise.allSettled([...this.running.values(), ...this.loose]);
    if (tokens.length > 0) {
      // Released, not dropped: whoever starts next resumes these from the stored attempts.
      const res = await this.tables.alerts
        .createQueryBuilder()
        .update(Alert)
        .set({ dispatchLeaseUntilMs: 0 })
        .where("dispatch_token IN (:...tokens) AND dispatch_state = 'pending'", { tokens })
        .execute();
      if (res.affected) this.logger.log(`${res.affected} alert dispatch(es) unfinished at shutdown; they resume at the next start`);
    }
    await Promise.allSettled(this.notifiers.map(async (n) => n.close?.()));
  }

  /** Runs the pending dispatch of `alertId` under the lease `token` (already written), in the background. */
  start(alertId: string, token: string): void {
    if (this.stopping.signal.aborted) return;
    const run = this.run(alertId, token)
      .catch((err) => this.logger.error(`Alert ${alertId}: dispatch failed: ${(err as Error).message}`))
      .finally(() => this.running.delete(token));
    this.running.set(token, run);
  }

  /** One re-send of a firing alert in the background: not retried (the next sweep sends again), stored only when it fails. */
  resend(notifier: AlertNotifier, alert: CostAlert): void {
    if (this.stopping.signal.aborted) return;
    const p = this.attempt(notifier, alert, 'firing', 0, false).finally(() => this.loose.delete(p));
    this.loose.add(p);
  }

  /** Takes over pending dispatches whose lease has expired or was released; returns how many. */
  async resumePending(): Promise<number> {
    if (this.stopping.signal.aborted) return 0;
    const now = Date.now();
    const stale = await this.tables.alerts
      .createQueryBuilder('a')
      .select(['a.id'])
      .where("a.dispatch_state = 'pending'")
      .andWhere('(a.dispatch_lease_until_ms IS NULL OR a.dispatch_lease_until_ms < :now)', { now })
      .orderBy('a.fired_at_ms', 'ASC')
      .take(100)
      .getMany();
    let resumed = 0;
    for (const { id } of stale) {
      const token = randomUUID();
      const res = await this.tables.alerts
        .createQueryBuilder()
        .update(Alert)
        .set({ dispatchToken: token, dispatchLeaseUntilMs: Date.now() + this.leaseMs() })
        .where("id = :id AND dispatch_state = 'pending' AND (dispatch_lease_until_ms IS NULL OR dispatch_lease_until_ms < :now)", { id, now })
        .execute();
      if (res.affected === 1) {
        resumed++;
        this.start(id, token);
      }
    }
    if (resumed > 0) this.logger.log(`Resumed ${resumed} pending alert dispatch(es)`);
    return resumed;
  }

  /**
   * One attempt, bounded by the timeout, counted and (unless `store` is false) stored. Never
   * throws: a notifier's failure is its outcome.
   */
  async attempt(notifier: AlertNotifier, alert: CostAlert, state: DeliveryState, attempt: number, store = true): Promise<AttemptOutcome> {
    const startedAtMs = Date.now();
    let result: 'ok' | 'failed' | 'timeout' = 'ok';
    let error: string | null = null;
    let httpStatus: number | null = null;
    try {
      await withTimeout(Promise.resolve().then(() => notifier.send(alert)), this.config.delivery.timeoutMs);
    } catch (err) {
      result = err instanceof AttemptTimeout ? 'timeout' : 'failed';
      error = (err instanceof Error ? err.message : String(err)).slice(0, 1000) || 'failed without a message';
      const status = (err as { httpStatus?: unknown } | null)?.httpStatus;
      httpStatus = typeof status === 'number' && Number.isInteger(status) ? status : null;
    }
    const finishedAtMs = Date.now();
    this.notifications.inc({ notifier: notifier.name, result });
    const handle = this.plugins.handle('notifier', notifier.name);
    if (result === 'ok') handle?.succeeded();
    else handle?.failed(error ?? result);
    if (result !== 'ok') this.logger.warn(`Alert ${alert.id} (${state}) to ${notifier.name}, attempt ${attempt}: ${error}`);
    if (store || result !== 'ok') {
      await this.tables.deliveries
        .insert({
          id: randomUUID(),
          alertId: alert.id,
          notifier: notifier.name,
          state,
          attempt,
          result: result === 'ok' ? 'ok' : 'failed',
          error,
          httpStatus,
          startedAtMs,
          finishedAtMs,
        })
        .catch((err) => this.logger.error(`Alert ${alert.id}: could not store a delivery attempt to ${notifier.name}: ${(err as Error).message}`));
    }
    return { notifier: notifier.name, ok: result === 'ok', error, httpStatus, durationMs: finishedAtMs - startedAtMs };
  }

  private async run(alertId: string, token: string): Promise<void> {
    const row = await this.tables.alerts.findOneBy({ id: alertId });
    if (!row || row.dispatchToken !== token || row.dispatchState !== 'pending') return;
    const history = await this.tables.deliveries.findBy({ alertId });
    const notify = JSON.parse(row.notify) as string[];
    // A resolution goes to those that were told the alert fired.
    const targets =
      row.state === 'resolved'
        ? notify.filter((n) => history.some((d) => d.notifier === n && d.state === 'firing' && d.result === 'ok'))
        : notify;
    const alert = toCostAlert(row);
    await Promise.allSettled(targets.map((name) => this.deliver(alert, name, history, token)));
    if (this.stopping.signal.aborted) return; // left pending: released in beforeApplicationShutdown
    await this.tables.alerts
      .createQueryBuilder()
      .update(Alert)
      .set({ dispatchState: 'done', dispatchToken: null, dispatchLeaseUntilMs: null })
      .where('id = :id AND dispatch_token = :token', { id: alertId, token })
      .execute();
  }

  /** Delivers one state of an alert to one notifier, continuing from the attempts already stored. */
  private async deliver(alert: CostAlert, name: string, history: AlertDelivery[], token: string): Promise<void> {
    const notifier = this.byName.get(name);
    if (!notifier) {
      this.logger.warn(`Alert ${alert.id}: notifier "${name}" is no longer configured; not delivered there`);
      return;
    }
    const previous = history.filter((d) => d.notifier === name && d.state === alert.state);
    if (previous.some((d) => d.result === 'ok')) return;
    const { maxAttempts } = this.config.delivery;
    for (let attempt = previous.length + 1; attempt <= maxAttempts; attempt++) {
      if (this.stopping.signal.aborted) return;
      // A retry after the alert resolved (a new dispatch took the row) would say "firing" too late.
      if (attempt > previous.length + 1 && (await this.tables.alerts.countBy({ id: alert.id, dispatchToken: token })) === 0) return;
      const outcome = await this.attempt(notifier, alert, alert.state, attempt);
      if (outcome.ok) return;
      if (attempt === maxAttempts) {
        this.logger.error(`Alert ${alert.id} (${alert.state}) to ${name}: gave up after ${maxAttempts} attempts`);
        return;
      }
      await pause(this.backoffMs(attempt), this.stopping.signal);
    }
  }
}
