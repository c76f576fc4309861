import { Inject, Injectable, Logger } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { stringify } from 'csv-stringify/sync';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { DataSource, Repository } from 'typeorm';
import { decodeKeysetCursor, encodeKeysetCursor } from '../../common/keyset-cursor';
import { nanosToUsdExact, parseNanos } from '../../common/money';
import { billingConfig } from '../../config/billing.config';
import { InjectReadDataSource, InjectWriteDataSource } from '../../database/data-sources';
import { JobLeaseService } from '../../database/job-lease.service';
import type { FinishedExport } from '../../plugins/sdk';
import { Principal } from '../auth/principal';
import { LlmUsage } from '../usage/entities/llm-usage.entity';
import { CURRENCY, csvOptions, exportColumns, GROUP_COLUMN, GroupBy, SUM_COLUMNS, SumColumn } from './billing-csv';
import { BillingPeriod, classifyPeriod, isDateOnly, localDays, localIso, MAX_PERIOD_DAYS, parseBound, periodLabel } from './billing-period';
import { BillingExportBusyException, BillingExportNotFoundException, BillingInvalidInputException } from './billing.exceptions';
import { BillingExport } from './entities/billing-export.entity';
import { ExportDeliveryService } from './export-delivery.service';
import { BillingMetrics } from './billing-metrics.service';

export interface ExportRequest {
  period: BillingPeriod;
  groupBy: readonly GroupBy[];
  /** Only this user's calls (a user-scope key's export); null for all users. */
  userId: string | null;
  /** `schedule`, or the API key that asked. */
  createdBy: string;
}

export interface ExportOutcome {
  export: BillingExport;
  /** False when the period's data had not changed: the existing version is returned, no file written. */
  created: boolean;
}

/** One aggregated row of an export, before it becomes CSV text. */
interface AggregateRow {
  groups: string[];
  sums: Record<SumColumn, number>;
  costNanos: bigint;
}

const SERIES_LOCK_TTL_MS = 10 * 60_000;
const SERIES_LOCK_WAIT_MS = 30_000;

/**
 * Writes billing exports. A file's bytes depend only on the period, grouping, scope and the usage
 * rows in it (no "generated at" inside), so re-running an unchanged period reproduces the latest
 * version's SHA-256 exactly and nothing new is written; changed data makes the next version.
 */
@Injectable()
export class BillingExportService {
  private readonly logger = new Logger(BillingExportService.name);
  /** Runs of one series in this process, chained: the database lease cannot tell them apart (same owner). */
  private readonly inProcess = new Map<string, Promise<unknown>>();

  private readonly exports: Repository<BillingExport>;
  private readonly usage: Repository<LlmUsage>;

  constructor(
    // Export rows on the write side: on SQLite's main connection a row written while the usage sink
    // has a batch transaction open would be undone with that batch's rollback. Usage is read like
    // the usage API reads it, so the file and /usage/overall see the same rows.
    @InjectWriteDataSource() write: DataSource,
    @InjectReadDataSource() read: DataSource,
    private readonly lease: JobLeaseService,
    private readonly delivery: ExportDeliveryService,
    private readonly metrics: BillingMetrics,
    @Inject(billingConfig.KEY) private readonly config: ConfigType<typeof billingConfig>,
  ) {
    this.exports = write.getRepository(BillingExport);
    this.usage = read.getRepository(LlmUsage);
  }

  /** The period an API caller asked for, or a 400 naming the field. */
  resolvePeriod(from: string, to: string): BillingPeriod {
    const tz = this.config.timeZone;
    const startMs = parseBound(from, tz);
    if (startMs === null) throw new BillingInvalidInputException(`from must be an ISO 8601 date (2026-11-25) or timestamp (2026-11-25T00:00:00Z), got "${from}"`);
    const endMs = parseBound(to, tz);
    if (endMs === null) throw new BillingInvalidInputException(`to must be an ISO 8601 date (2026-11-26) or timestamp (2026-11-26T00:00:00Z), got "${to}"`);
    if (endMs <= startMs) throw new BillingInvalidInputException(`to must be after from (the period is [from, to)${isDateOnly(to) ? '; a date as to means midnight starting that day' : ''})`);
    if (endMs - startMs > MAX_PERIOD_DAYS * 86_400_000 + 3_600_000) {
      throw new BillingInvalidInputException(`to must be at most ${MAX_PERIOD_DAYS} days after from`);
    }
    return classifyPeriod(startMs, endMs, tz);
  }

  /** Runs one export now (serialised per series across processes by a database lease). */
  async run(req: ExportRequest): Promise<ExportOutcome> {
    const seriesKey = this.seriesKey(req);
    const previous = this.inProcess.get(seriesKey) ?? Promise.resolve();
    const mine = previous.catch(() => undefined).then(() => this.runLocked(seriesKey, req));
    this.inProcess.set(seriesKey, mine);
    try {
      return await mine;
    } finally {
      if (this.inProcess.get(seriesKey) === mine) this.inProcess.delete(seriesKey);
    }
  }

  /** Exports newest first, `limit` at a time; `cursor` is the previous page's next cursor. */
  async list(principal: Principal, limit: number, cursor?: string): Promise<{ items: BillingExport[]; nextCursor: string | null }> {
    const qb = this.exports.createQueryBuilder('e').orderBy('e.created_at_ms', 'DESC').addOrderBy('e.id', 'DESC').take(limit + 1);
    if (principal.scope !== 'admin') qb.andWhere('e.user_id = :uid', { uid: principal.userId });
    if (cursor !== undefined) {
      const after = decodeKeysetCursor(cursor);
      if (!after) throw new BillingInvalidInputException('cursor is not valid: pass the next_cursor of a previous page unchanged');
      qb.andWhere('(e.created_at_ms < :ms OR (e.created_at_ms = :ms AND e.id < :id))', { ms: after.ms, id: after.id });
    }
    const rows = await qb.getMany();
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > limit && last ? encodeKeysetCursor({ ms: last.createdAtMs, id: last.id }) : null };
  }

  /** One export the principal may see (another user's is "not found", so its existence does not leak). */
  async get(id: string, principal: Principal): Promise<BillingExport> {
    const found = await this.exports.findOne({ where: { id } });
    if (!found || (principal.scope !== 'admin' && found.userId !== principal.userId)) throw new BillingExportNotFoundException(id);
    return found;
  }

  filePath(exp: BillingExport): string {
    return join(this.config.exportDir, exp.fileName);
  }

  private seriesKey(req: ExportRequest): string {
    const p = req.period;
    return [p.kind, p.startMs, p.endMs, p.timeZone, req.groupBy.join(','), req.userId ?? '*'].join('|');
  }

  private async runLocked(seriesKey: string, req: ExportRequest): Promise<ExportOutcome> {
    const lockName = `billing-series:${createHash('sha256').update(seriesKey).digest('hex').slice(0, 40)}`;
    const deadline = Date.now() + SERIES_LOCK_WAIT_MS;
    while (!(await this.lease.acquire(lockName, SERIES_LOCK_TTL_MS))) {
      if (Date.now() > deadline) throw new BillingExportBusyException();
      await new Promise((r) => setTimeout(r, 200));
    }
    try {
      return await this.export(seriesKey, req);
    } finally {
      await this.lease.release(lockName).catch((err: unknown) => this.logger.warn(`could not release ${lockName}: ${(err as Error).message}`));
    }
  }

  private async export(seriesKey: string, req: ExportRequest): Promise<ExportOutcome> {
    const rows = await this.aggregate(req);
    const { content, totals, costNanos, requests } = this.render(req, rows);
    const sha256 = createHash('sha256').update(content).digest('hex');
    const latest = await this.exports.findOne({ where: { seriesKey }, order: { version: 'DESC' } });
    if (latest && latest.sha256 === sha256) {
      // Same bytes as the latest version: nothing new. A file removed by hand is put back as it was.
      if (!existsSync(this.filePath(latest))) await this.writeAtomically(latest.fileName, content);
      return { export: latest, created: false };
    }
    const version = (latest?.version ?? 0) + 1;
    const fileName = this.fileName(req, version);
    await this.writeAtomically(fileName, content);
    const now = Date.now();
    const row = this.exports.create({
      id: randomUUID(),
      seriesKey,
      kind: req.period.kind,
      periodStartMs: req.period.startMs,
      periodEndMs: req.period.endMs,
      timeZone: req.period.timeZone,
      groupBy: req.groupBy.join(','),
      userId: req.userId,
      version,
      status: 'current',
      fileName,
      sha256,
      bytes: Buffer.byteLength(content),
      rows: rows.length,
      totalRequests: requests,
      totalCostNanos: costNanos.toString(),
      totals: JSON.stringify(totals),
      destinations: '[]',
      createdBy: req.createdBy.slice(0, 128),
      createdAtMs: now,
      supersededAtMs: null,
      supersededBy: null,
    });
    await this.exports.manager.transaction(async (m) => {
      await m.insert(BillingExport, row);
      await m
        .createQueryBuilder()
        .update(BillingExport)
        .set({ status: 'superseded', supersededAtMs: now, supersededBy: row.id })
        .where('series_key = :seriesKey AND status = :current AND id <> :id', { seriesKey, current: 'current', id: row.id })
        .execute();
    });
    this.metrics.versionWritten(req.period.kind);
    this.logger.log(`billing export ${fileName}: ${rows.length} rows, ${nanosToUsdExact(costNanos)} USD${latest ? ` (supersedes v${latest.version})` : ''}`);
    const results = await this.delivery.deliver(this.finished(row));
    row.destinations = JSON.stringify(results);
    await this.exports.update({ id: row.id }, { destinations: row.destinations });
    return { export: row, created: true };
  }

  /** Sums per group in SQL (exact: integers, money as text); the order is fixed afterwards in code. */
  private async aggregate(req: ExportRequest): Promise<AggregateRow[]> {
    const { period } = req;
    const exprs = req.groupBy.map((g) => this.groupExpr(g, period));
    let qb = this.usage.createQueryBuilder('u').select(exprs[0], 'g0');
    exprs.slice(1).forEach((e, i) => (qb = qb.addSelect(e, `g${i + 1}`)));
    qb = qb
      .addSelect('COUNT(*)', 'requests')
      .addSelect('COALESCE(SUM(u.input_tokens), 0)', 'input_tokens')
      .addSelect('COALESCE(SUM(u.cached_input_tokens), 0)', 'cached_input_tokens')
      .addSelect('COALESCE(SUM(u.cache_write_tokens), 0)', 'cache_write_tokens')
      .addSelect('COALESCE(SUM(u.output_tokens), 0)', 'output_tokens')
      .addSelect('COALESCE(SUM(u.reasoning_tokens), 0)', 'reasoning_tokens')
      .addSelect('SUM(CASE WHEN u.unpriced THEN 1 ELSE 0 END)', 'unpriced_requests')
      .addSelect('CAST(SUM(u.cost_nanos) AS TEXT)', 'cost_nanos')
      .where('u.created_at_ms >= :startMs AND u.created_at_ms < :endMs', { startMs: period.startMs, endMs: period.endMs });
    if (req.userId !== null) qb = qb.andWhere('u.user_id = :userId', { userId: req.userId });
    exprs.forEach((e, i) => (qb = i === 0 ? qb.groupBy(e) : qb.addGroupBy(e)));
    const raw = await qb.getRawMany<Record<string, string | number | null>>();
    const rows = raw.map((r) => ({
      groups: exprs.map((_, i) => (r[`g${i}`] === null || r[`g${i}`] === undefined ? '' : String(r[`g${i}`]))),
      sums: Object.fromEntries(SUM_COLUMNS.map((c) => [c, Number(r[c] ?? 0)])) as Record<SumColumn, number>,
      costNanos: parseNanos(r.cost_nanos),
    }));
    // Code-unit order, not SQL ORDER BY: PostgreSQL collations differ between servers, files must not.
    return rows.sort((a, b) => compareCells(a.groups, b.groups));
  }

  /** The SQL of one group column. Day labels and bounds are computed here, so only constants are inlined. */
  private groupExpr(g: GroupBy, period: BillingPeriod): string {
    if (g === 'user') return 'u.user_id';
    if (g === 'model') return 'u.requested_model';
    if (g === 'task') return 'u.task_id';
    // Always a CASE, also for one day: PostgreSQL refuses to GROUP BY a bare string constant.
    const days = localDays(period);
    const whens = days.map((d, i) => `WHEN u.created_at_ms < ${days[i + 1]?.startMs ?? period.endMs} THEN '${d.label}'`);
    return `(CASE ${whens.join(' ')} END)`;
  }

  private render(req: ExportRequest, rows: AggregateRow[]) {
    const columns = exportColumns(req.groupBy);
    const periodStart = localIso(req.period.startMs, req.period.timeZone);
    const periodEnd = localIso(req.period.endMs, req.period.timeZone);
    const sums = Object.fromEntries(SUM_COLUMNS.map((c) => [c, 0])) as Record<SumColumn, number>;
    let costNanos = 0n;
    const records = rows.map((r) => {
      const rec: Record<string, string> = { period_start: periodStart, period_end: periodEnd };
      req.groupBy.forEach((g, i) => (rec[GROUP_COLUMN[g]] = r.groups[i]));
      for (const c of SUM_COLUMNS) {
        rec[c] = String(r.sums[c]);
        sums[c] += r.sums[c];
      }
      rec.cost_usd = nanosToUsdExact(r.costNanos);
      rec.currency = CURRENCY;
      costNanos += r.costNanos;
      return rec;
    });
    const content = stringify(records, csvOptions(columns));
    return { content, totals: { ...sums, cost_usd: nanosToUsdExact(costNanos), currency: CURRENCY }, costNanos, requests: sums.requests };
  }

  /** Written under a temporary name, flushed, then renamed: a reader never sees half a file. */
  private async writeAtomically(fileName: string, content: string): Promise<void> {
    await mkdir(this.config.exportDir, { recursive: true });
    const tmp = join(this.config.exportDir, `.${fileName}.${randomUUID().slice(0, 8)}.tmp`);
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(content, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, join(this.config.exportDir, fileName));
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }

  /** `usage-daily-2026-11-25.v1.csv`; a non-default grouping or a user scope is part of the name. */
  private fileName(req: ExportRequest, version: number): string {
    const parts = [`usage-${req.period.kind}-${periodLabel(req.period)}`];
    const grouping = req.groupBy.join('-');
    if (grouping !== 'user-model') parts.push(`by-${grouping}`);
    if (req.userId !== null) {
      const safe = req.userId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 60);
      parts.push(`user-${safe}-${createHash('sha256').update(req.userId).digest('hex').slice(0, 8)}`);
    }
    return `${parts.join('-')}.v${version}.csv`;
  }

  finished(row: BillingExport): FinishedExport {
    return {
      id: row.id,
      kind: row.kind,
      periodStart: localIso(row.periodStartMs, row.timeZone),
      periodEnd: localIso(row.periodEndMs, row.timeZone),
      groupBy: row.groupBy.split(',') as GroupBy[],
      userId: row.userId,
      version: row.version,
      fileName: row.fileName,
      path: this.filePath(row),
      sha256: row.sha256,
      bytes: row.bytes,
      rows: row.rows,
      totalCostUsd: nanosToUsdExact(BigInt(row.totalCostNanos)),
    };
  }
}

function compareCells(a: string[], b: string[]): number {
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}
