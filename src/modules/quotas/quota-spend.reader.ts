import { Injectable } from '@nestjs/common';
import { DataSource, SelectQueryBuilder } from 'typeorm';
import { parseNanos } from '../../common/money';
import { UsageRecorder } from '../usage/usage-recorder.service';
import { QuotaRule, QuotaScope, ScopeKey } from './quota-rule';
import { WindowBounds } from './quota-window';

export interface ScopeSpend {
  scope: QuotaScope;
  nanos: bigint;
  tokens: bigint;
}

/** Task windows are evaluated for tasks that made a call in this period (older tasks are over). */
const TASK_LOOKBACK_MS = 7 * 24 * 3_600_000;

const COLUMN: Record<ScopeKey, string> = { user_id: 'u.user_id', model: 'u.requested_model', task_id: 'u.task_id' };

/**
 * A rule's spend from `llm_usage`, exactly (integer sums cast to text, as the usage API does), on
 * SQLite and PostgreSQL alike. Spend is counted by the model the call asked for, the model a
 * rule's scope names at admission.
 */
@Injectable()
export class QuotaSpendReader {
  constructor(
    private readonly dataSource: DataSource,
    private readonly recorder: UsageRecorder,
  ) {}

  /** Spend of one scope value (all keys concrete) in a window. */
  async spendOf(scope: QuotaScope, bounds: WindowBounds, flush = true): Promise<{ nanos: bigint; tokens: bigint }> {
    // Records still queued in this process belong to the window too.
    if (flush) await this.recorder.flush();
    const qb = this.base(bounds);
    for (const key of Object.keys(scope) as ScopeKey[]) qb.andWhere(`${COLUMN[key]} = :${key}`, { [key]: scope[key] });
    const row = await qb.getRawOne<{ nanos: string | null; tokens: string | number | null }>();
    return { nanos: parseNanos(row?.nanos), tokens: BigInt(row?.tokens ?? 0) };
  }

  /** Spend of every scope value of a rule in a window ("*" keys and the task of task windows grouped). */
  async spendByScope(rule: QuotaRule, bounds: WindowBounds, nowMs: number): Promise<ScopeSpend[]> {
    const qb = this.base(bounds);
    const grouped: ScopeKey[] = [];
    for (const key of ['user_id', 'model', 'task_id'] as ScopeKey[]) {
      const pattern = rule.scope[key];
      const perTask = key === 'task_id' && rule.window.kind === 'task' && pattern === undefined;
      if (pattern === '*' || perTask) {
        grouped.push(key);
        qb.andWhere(`${COLUMN[key]} IS NOT NULL`);
      } else if (pattern !== undefined) {
        qb.andWhere(`${COLUMN[key]} = :${key}`, { [key]: pattern });
      }
    }
    if (rule.window.kind === 'task') {
      qb.andWhere((sub) => {
        const recent = sub.subQuery().select('r.task_id').from('llm_usage', 'r').where('r.created_at_ms >= :since').getQuery();
        return `u.task_id IN ${recent}`;
      });
      qb.setParameter('since', nowMs - TASK_LOOKBACK_MS);
    }
    grouped.forEach((key, i) => {
      qb.addSelect(COLUMN[key], `k${i}`).addGroupBy(COLUMN[key]);
    });
    const rows = await qb.getRawMany<Record<string, string | number | null>>();
    const out: ScopeSpend[] = [];
    for (const row of rows) {
      const scope: QuotaScope = {};
      for (const key of ['user_id', 'model', 'task_id'] as ScopeKey[]) {
        const i = grouped.indexOf(key);
        if (i >= 0) scope[key] = String(row[`k${i}`]);
        else if (rule.scope[key] !== undefined) scope[key] = rule.scope[key];
      }
      out.push({ scope, nanos: parseNanos(row.nanos), tokens: BigInt(row.tokens ?? 0) });
    }
    // A rule without "*" has exactly one scope value, spent or not: report it at zero.
    if (grouped.length === 0 && out.length === 0) out.push({ scope: { ...rule.scope }, nanos: 0n, tokens: 0n });
    return out;
  }

  /** Spend per hour bucket of a scope value since `sinceMs` (to seed a rolling window's buckets). */
  async hourly(scope: QuotaScope, sinceMs: number): Promise<{ hourMs: number; nanos: bigint; tokens: bigint }[]> {
    await this.recorder.flush();
    const qb = this.dataSource
      .createQueryBuilder()
      .select('(u.created_at_ms / 3600000) * 3600000', 'hour')
      .addSelect('CAST(SUM(u.cost_nanos) AS TEXT)', 'nanos')
      .addSelect('COALESCE(SUM(u.total_tokens), 0)', 'tokens')
      .from('llm_usage', 'u')
      .where('u.created_at_ms >= :sinceMs', { sinceMs })
      .groupBy('(u.created_at_ms / 3600000) * 3600000');
    for (const key of Object.keys(scope) as ScopeKey[]) qb.andWhere(`${COLUMN[key]} = :${key}`, { [key]: scope[key] });
    const rows = await qb.getRawMany<{ hour: string | number; nanos: string | null; tokens: string | number }>();
    return rows.map((r) => ({ hourMs: Number(r.hour), nanos: parseNanos(r.nanos), tokens: BigInt(r.tokens ?? 0) }));
  }

  private base(bounds: WindowBounds): SelectQueryBuilder<Record<string, unknown>> {
    const qb = this.dataSource
      .createQueryBuilder()
      .select('CAST(SUM(u.cost_nanos) AS TEXT)', 'nanos')
      .addSelect('COALESCE(SUM(u.total_tokens), 0)', 'tokens')
      .from('llm_usage', 'u')
      .where('1 = 1');
    if (bounds.startMs !== null) qb.andWhere('u.created_at_ms >= :startMs', { startMs: bounds.startMs });
    if (bounds.endMs !== null && bounds.kind !== 'rolling') qb.andWhere('u.created_at_ms < :endMs', { endMs: bounds.endMs });
    return qb;
  }
}
