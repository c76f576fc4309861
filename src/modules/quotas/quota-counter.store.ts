import { Inject, Injectable } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { DataSource } from 'typeorm';
import { quotasConfig } from '../../config/quotas.config';
import { parseNanos } from '../../common/money';
import { MAX_ROLLING_HOURS, QuotaRule, QuotaScope, scopeKey } from './quota-rule';
import { QuotaSpendReader } from './quota-spend.reader';
import { hourStart, HOUR_MS, WindowBounds } from './quota-window';
import { InjectWriteDataSource } from '../../database/data-sources';

/** A reservation held in the database, to be settled once. */
export interface CounterReservation {
  readonly ruleId: string;
  readonly scopeKey: string;
  readonly windowKey: string;
  /** Hour buckets of a rolling window are keyed under this prefix; null for other windows. */
  readonly bucketPrefix: string | null;
  /** Time slot the reservation was taken in (see `slotOf`). */
  readonly slot: number;
  readonly nanos: bigint;
  readonly tokens: bigint;
}

export type ReserveOutcome =
  | { ok: true; reservation: CounterReservation }
  | { ok: false; spentNanos: bigint; reservedNanos: bigint; spentTokens: bigint; reservedTokens: bigint };

interface Key {
  ruleId: string;
  scopeKey: string;
  windowKey: string;
  bucketPrefix: string | null;
  /** Buckets older than this hour are out of a rolling window (0 for other windows). */
  cutoffMs: number;
}

/**
 * The enforcement counters of block rules, in the database so that every process sees the same
 * spend and reservations. Every change is ONE conditional UPDATE of one row: atomic on SQLite
 * (one writer at a time) and on PostgreSQL (the row lock makes a concurrent UPDATE wait and then
 * re-check its WHERE against the new row), so two calls, or two replicas, can never both take the
 * last of a limit. No transactions: TypeORM shares one connection on SQLite, where concurrent
 * transactions would nest into each other.
 *
 * A crashed process never settles its reservations, so reservations are kept by time slot
 * (QUOTA_RESERVATION_TTL_S long): the counter holds what was reserved in the current slot and in
 * the one before; whatever is older is dropped by the next reservation's UPDATE itself. A call's
 * reservation thus holds for one to two slots, and what a dead process held is freed within two,
 * even while other calls keep the counter busy. A settle only subtracts from the slot its
 * reservation is still counted in, so a late settle never frees someone else's reservation.
 */
@Injectable()
export class QuotaCounterStore {
  constructor(
    // Its own connection on SQLite: on the main one, a reservation made while the usage sink has a
    // batch transaction open would be undone with it if that batch rolled back.
    @InjectWriteDataSource() private readonly dataSource: DataSource,
    private readonly spend: QuotaSpendReader,
    @Inject(quotasConfig.KEY) private readonly config: ConfigType<typeof quotasConfig>,
  ) {}

  async reserve(rule: QuotaRule, scope: QuotaScope, bounds: WindowBounds, nowMs: number, nanos: bigint, tokens: bigint): Promise<ReserveOutcome> {
    const key = this.keyOf(rule, scope, bounds, nowMs);
    const slot = this.slotOf(nowMs);
    const reservation: CounterReservation = { ruleId: key.ruleId, scopeKey: key.scopeKey, windowKey: key.windowKey, bucketPrefix: key.bucketPrefix, slot, nanos, tokens };
    if (await this.tryReserve(rule, key, slot, nanos, tokens)) return { ok: true, reservation };
    // Refused, or no counter yet: create it (a no-op when it exists) and ask once more.
    await this.ensureCounter(key, scope, bounds, nowMs);
    if (await this.tryReserve(rule, key, slot, nanos, tokens)) return { ok: true, reservation };
    return { ok: false, ...(await this.read(key, slot)) };
  }

  /** Turns the reservation into spend (the call's real cost and tokens); 0 for a call that never ran. */
  async settle(r: CounterReservation, actualNanos: bigint, actualTokens: bigint, nowMs: number): Promise<void> {
    await this.exec(
      `UPDATE quota_counters SET spent_nanos = spent_nanos + CAST(:a AS BIGINT), spent_tokens = spent_tokens + CAST(:at AS BIGINT),
        reserved_nanos = CASE WHEN reserved_slot = CAST(:slot AS BIGINT) THEN reserved_nanos - CAST(:w AS BIGINT) ELSE reserved_nanos END,
        reserved_tokens = CASE WHEN reserved_slot = CAST(:slot AS BIGINT) THEN reserved_tokens - CAST(:t AS BIGINT) ELSE reserved_tokens END,
        reserved_prev_nanos = CASE WHEN reserved_slot = CAST(:slot AS BIGINT) + 1 THEN reserved_prev_nanos - CAST(:w AS BIGINT) ELSE reserved_prev_nanos END,
        reserved_prev_tokens = CASE WHEN reserved_slot = CAST(:slot AS BIGINT) + 1 THEN reserved_prev_tokens - CAST(:t AS BIGINT) ELSE reserved_prev_tokens END
       WHERE rule_id = :r AND scope_key = :s AND window_key = :k`,
      { a: actualNanos.toString(), at: actualTokens.toString(), slot: String(r.slot), w: r.nanos.toString(), t: r.tokens.toString(), r: r.ruleId, s: r.scopeKey, k: r.windowKey },
    );
    if (r.bucketPrefix !== null && (actualNanos > 0n || actualTokens > 0n)) {
      // The head row above already counts it; the bucket lets it leave the window N hours later.
      const hour = hourStart(nowMs);
      const bucket = { r: r.ruleId, s: r.scopeKey, k: `${r.bucketPrefix}${hour}`, h: hour, now: nowMs };
      await this.exec(
        `INSERT INTO quota_counters (rule_id, scope_key, window_key, window_start_ms, created_at_ms) VALUES (:r, :s, :k, CAST(:h AS BIGINT), CAST(:now AS BIGINT)) ON CONFLICT DO NOTHING`,
        bucket,
      );
      await this.exec(
        `UPDATE quota_counters SET spent_nanos = spent_nanos + CAST(:a AS BIGINT), spent_tokens = spent_tokens + CAST(:at AS BIGINT) WHERE rule_id = :r AND scope_key = :s AND window_key = :k`,
        { ...bucket, a: actualNanos.toString(), at: actualTokens.toString() },
      );
    }
  }

  /**
   * Raises a counter's spend to what `llm_usage` holds for its window when the usage is higher:
   * calls admitted without this counter (by a replica whose rule list was a moment behind) then
   * count too. Only ever raises it, so a settle racing with this statement is never undone; a
   * settled call not yet written to `llm_usage` keeps the counter above the sum.
   */
  async catchUp(rule: QuotaRule, scope: QuotaScope, bounds: WindowBounds, nowMs: number, usage: { nanos: bigint; tokens: bigint }): Promise<void> {
    if (rule.window.kind === 'rolling') return; // a rolling head holds cumulative spend, not the window's
    const key = this.keyOf(rule, scope, bounds, nowMs);
    await this.exec(
      `UPDATE quota_counters SET
        spent_nanos = CASE WHEN spent_nanos < CAST(:n AS BIGINT) THEN CAST(:n AS BIGINT) ELSE spent_nanos END,
        spent_tokens = CASE WHEN spent_tokens < CAST(:t AS BIGINT) THEN CAST(:t AS BIGINT) ELSE spent_tokens END
       WHERE rule_id = :r AND scope_key = :s AND window_key = :k`,
      { n: usage.nanos.toString(), t: usage.tokens.toString(), r: key.ruleId, s: key.scopeKey, k: key.windowKey },
    );
  }

  /** Forgets the counters of a rule (deleted, or its scope or window changed). */
  async dropRule(ruleId: string): Promise<void> {
    await this.exec(`DELETE FROM quota_counters WHERE rule_id = :r`, { r: ruleId });
  }

  /**
   * Deletes counters nobody will use again: those of rules that no longer exist (removed from the
   * file; the API's DELETE drops them at once), calendar windows
   * that ended over a day ago, and rolling buckets older than the longest rolling window.
   */
  async prune(nowMs: number, liveRuleIds: string[]): Promise<number> {
    let removed = 0;
    // Only counters a day old: the list of rules may lag a rule just created on another replica.
    const dayAgo = String(nowMs - 24 * HOUR_MS);
    const rows = await this.select(`SELECT DISTINCT rule_id FROM quota_counters WHERE created_at_ms < CAST(:d AS BIGINT)`, { d: dayAgo });
    for (const { rule_id: ruleId } of rows) {
      if (!liveRuleIds.includes(String(ruleId))) {
        removed += await this.exec(`DELETE FROM quota_counters WHERE rule_id = :r AND created_at_ms < CAST(:d AS BIGINT)`, { r: ruleId, d: dayAgo });
      }
    }
    // A month is at most 31 days; one more day keeps any window that could still be current.
    removed += await this.exec(
      `DELETE FROM quota_counters WHERE (window_key LIKE 'day:%' OR window_key LIKE 'week:%' OR window_key LIKE 'month:%') AND window_start_ms < CAST(:old AS BIGINT)`,
      { old: String(nowMs - 33 * 24 * HOUR_MS) },
    );
    removed += await this.exec(`DELETE FROM quota_counters WHERE window_key LIKE 'r%h:%' AND window_start_ms < CAST(:old AS BIGINT)`, {
      old: String(nowMs - (MAX_ROLLING_HOURS + 2) * HOUR_MS),
    });
    return removed;
  }

  // --- internals ------------------------------------------------------------------------------

  private keyOf(rule: QuotaRule, scope: QuotaScope, bounds: WindowBounds, nowMs: number): Key {
    const base = { ruleId: rule.id, scopeKey: scopeKey(scope) };
    if (rule.window.kind !== 'rolling') return { ...base, windowKey: bounds.key, bucketPrefix: null, cutoffMs: 0 };
    const head = `r${rule.window.hours}h`;
    // Whole hour buckets that overlap the last N hours stay counted: up to one hour more than the
    // window, never less, so the limit holds for every N-hour span.
    return { ...base, windowKey: head, bucketPrefix: `${head}:`, cutoffMs: hourStart(nowMs - rule.window.hours * HOUR_MS) };
  }

  /** Reservation slots are QUOTA_RESERVATION_TTL_S long, counted from the Unix epoch. */
  private slotOf(nowMs: number): number {
    return Math.floor(nowMs / (this.config.reservationTtlS * 1000));
  }

  /**
   * The conditional UPDATE. Its SET expressions all read the row as it was, so the slot rotation
   * (current -> previous -> dropped) and the reservation happen in the one statement. A process
   * whose clock is a slot behind the counter's adds to the previous slot, where its settle looks.
   */
  private async tryReserve(rule: QuotaRule, key: Key, slot: number, nanos: bigint, tokens: bigint): Promise<boolean> {
    const old = (col: string) =>
      key.bucketPrefix === null
        ? '0'
        : `(SELECT COALESCE(SUM(b.${col}), 0) FROM quota_counters b WHERE b.rule_id = :r AND b.scope_key = :s AND b.window_key LIKE :bp AND b.window_start_ms >= quota_counters.window_start_ms AND b.window_start_ms < CAST(:cut AS BIGINT))`;
    const S = 'CAST(:slot AS BIGINT)';
    // What is still reserved as of :slot.
    const live = (cur: string, prev: string) => `(CASE WHEN ${S} = reserved_slot + 1 THEN ${cur} WHEN ${S} > reserved_slot + 1 THEN 0 ELSE ${cur} + ${prev} END)`;
    const prevAfter = (cur: string, prev: string, add: string) =>
      `CASE WHEN ${S} = reserved_slot + 1 THEN ${cur} WHEN ${S} > reserved_slot + 1 THEN 0 WHEN ${S} < reserved_slot THEN ${prev} + ${add} ELSE ${prev} END`;
    const curAfter = (cur: string, add: string) => `CASE WHEN ${S} = reserved_slot THEN ${cur} + ${add} WHEN ${S} > reserved_slot THEN ${add} ELSE ${cur} END`;
    const W = 'CAST(:w AS BIGINT)';
    const T = 'CAST(:t AS BIGINT)';
    const res = await this.exec(
      `UPDATE quota_counters SET
        reserved_prev_nanos = ${prevAfter('reserved_nanos', 'reserved_prev_nanos', W)},
        reserved_prev_tokens = ${prevAfter('reserved_tokens', 'reserved_prev_tokens', T)},
        reserved_nanos = ${curAfter('reserved_nanos', W)},
        reserved_tokens = ${curAfter('reserved_tokens', T)},
        reserved_slot = CASE WHEN ${S} > reserved_slot THEN ${S} ELSE reserved_slot END
       WHERE rule_id = :r AND scope_key = :s AND window_key = :k
        AND (CAST(:ln AS BIGINT) < 0 OR spent_nanos - ${old('spent_nanos')} + ${live('reserved_nanos', 'reserved_prev_nanos')} + ${W} <= CAST(:ln AS BIGINT))
        AND (CAST(:lt AS BIGINT) < 0 OR spent_tokens - ${old('spent_tokens')} + ${live('reserved_tokens', 'reserved_prev_tokens')} + ${T} <= CAST(:lt AS BIGINT))`,
      {
        w: nanos.toString(),
        t: tokens.toString(),
        slot: String(slot),
        r: key.ruleId,
        s: key.scopeKey,
        k: key.windowKey,
        bp: `${key.bucketPrefix ?? ''}%`,
        cut: String(key.cutoffMs),
        ln: (rule.limitNanos ?? -1n).toString(),
        lt: String(rule.limitTokens ?? -1),
      },
    );
    return res === 1;
  }

  /**
   * Creates the counter on first use with the spend already in `llm_usage` for the window, so
   * calls made before the rule existed (or before this window's first reservation) count.
   */
  private async ensureCounter(key: Key, scope: QuotaScope, bounds: WindowBounds, nowMs: number): Promise<void> {
    const exists = await this.select(`SELECT 1 AS x FROM quota_counters WHERE rule_id = :r AND scope_key = :s AND window_key = :k`, {
      r: key.ruleId,
      s: key.scopeKey,
      k: key.windowKey,
    });
    if (exists.length > 0) return;
    let spent: { nanos: bigint; tokens: bigint };
    let startMs = bounds.startMs ?? 0;
    if (key.bucketPrefix !== null) {
      startMs = key.cutoffMs;
      const hours = await this.spend.hourly(scope, startMs);
      spent = { nanos: 0n, tokens: 0n };
      for (const h of hours) {
        spent.nanos += h.nanos;
        spent.tokens += h.tokens;
        await this.exec(
          `INSERT INTO quota_counters (rule_id, scope_key, window_key, window_start_ms, spent_nanos, spent_tokens, created_at_ms)
           VALUES (:r, :s, :k, CAST(:h AS BIGINT), CAST(:n AS BIGINT), CAST(:t AS BIGINT), CAST(:now AS BIGINT)) ON CONFLICT DO NOTHING`,
          { r: key.ruleId, s: key.scopeKey, k: `${key.bucketPrefix}${h.hourMs}`, h: h.hourMs, n: h.nanos.toString(), t: h.tokens.toString(), now: nowMs },
        );
      }
    } else {
      spent = await this.spend.spendOf(scope, bounds);
    }
    await this.exec(
      `INSERT INTO quota_counters (rule_id, scope_key, window_key, window_start_ms, spent_nanos, spent_tokens, created_at_ms)
       VALUES (:r, :s, :k, CAST(:st AS BIGINT), CAST(:n AS BIGINT), CAST(:t AS BIGINT), CAST(:now AS BIGINT)) ON CONFLICT DO NOTHING`,
      { r: key.ruleId, s: key.scopeKey, k: key.windowKey, st: String(startMs), n: spent.nanos.toString(), t: spent.tokens.toString(), now: nowMs },
    );
  }

  private async read(key: Key, slot: number): Promise<{ spentNanos: bigint; reservedNanos: bigint; spentTokens: bigint; reservedTokens: bigint }> {
    const params = { r: key.ruleId, s: key.scopeKey, k: key.windowKey, bp: `${key.bucketPrefix ?? ''}%`, cut: String(key.cutoffMs) };
    const rows = await this.select(
      `SELECT CAST(spent_nanos AS TEXT) AS sn, CAST(spent_tokens AS TEXT) AS st, window_start_ms AS ws, CAST(reserved_slot AS TEXT) AS slot,
        CAST(reserved_nanos AS TEXT) AS rn, CAST(reserved_tokens AS TEXT) AS rt, CAST(reserved_prev_nanos AS TEXT) AS pn, CAST(reserved_prev_tokens AS TEXT) AS pt
       FROM quota_counters WHERE rule_id = :r AND scope_key = :s AND window_key = :k`,
      params,
    );
    const row = rows[0] ?? {};
    // Reserved as of `slot`, as the refused UPDATE saw it.
    const ahead = BigInt(slot) - parseNanos(row.slot);
    const live = (cur: unknown, prev: unknown) => (ahead === 1n ? parseNanos(cur) : ahead > 1n ? 0n : parseNanos(cur) + parseNanos(prev));
    let spentNanos = parseNanos(row.sn);
    let spentTokens = parseNanos(row.st);
    if (key.bucketPrefix !== null) {
      const old = await this.select(
        `SELECT CAST(COALESCE(SUM(spent_nanos), 0) AS TEXT) AS sn, CAST(COALESCE(SUM(spent_tokens), 0) AS TEXT) AS st FROM quota_counters
         WHERE rule_id = :r AND scope_key = :s AND window_key LIKE :bp AND window_start_ms >= CAST(:ws AS BIGINT) AND window_start_ms < CAST(:cut AS BIGINT)`,
        { ...params, ws: String(row.ws ?? 0) },
      );
      spentNanos -= parseNanos(old[0]?.sn);
      spentTokens -= parseNanos(old[0]?.st);
    }
    return { spentNanos, reservedNanos: live(row.rn, row.pn), spentTokens, reservedTokens: live(row.rt, row.pt) };
  }

  /** Runs a write with `:name` parameters on either database; returns the number of rows changed. */
  private async exec(sql: string, params: Record<string, unknown>): Promise<number> {
    const [query, values] = this.dataSource.driver.escapeQueryWithParameters(sql.trim(), params, {});
    const runner = this.dataSource.createQueryRunner();
    try {
      const res = await runner.query(query, values, true);
      return res.affected ?? 0;
    } finally {
      await runner.release();
    }
  }

  private async select(sql: string, params: Record<string, unknown>): Promise<Record<string, unknown>[]> {
    const [query, values] = this.dataSource.driver.escapeQueryWithParameters(sql.trim(), params, {});
    return this.dataSource.query(query, values);
  }
}
