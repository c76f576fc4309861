import { Inject, Injectable, Logger } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { DateTime } from 'luxon';
import { DataSource } from 'typeorm';
import { billingConfig } from '../../config/billing.config';
import { InjectWriteDataSource } from '../../database/data-sources';
import { JobLeaseService } from '../../database/job-lease.service';
import { DEFAULT_GROUP_BY } from './billing-csv';
import { BillingPeriod, previousPeriod } from './billing-period';
import { BillingExportService, ExportOutcome } from './billing-export.service';
import { BillingPeriodPastRetentionException } from './billing.exceptions';
import { BillingExport } from './entities/billing-export.entity';

/**
 * How far back a scheduled run looks for late data: usage recorded for an already exported period
 * (a journal replayed after a crash, a slow sink) makes a new version on the next run. Whole local
 * periods before the one being exported.
 */
export const LATE_DATA_LOOKBACK = { daily: 7, monthly: 1 } as const;

/**
 * A period's scheduled export is claimed once for this long, by whichever replica ticks first: long
 * enough that a replica whose clock or cron runs a little late does not export the period again.
 */
const TICK_LEASE_TTL_MS = 6 * 3_600_000;

export interface ScheduledRun {
  /** False when another replica (or an earlier tick) already claimed this period's scheduled export. */
  ran: boolean;
  period: BillingPeriod;
  outcomes: ExportOutcome[];
}

/**
 * What a scheduled tick does, callable on demand (tests, an operator): export the previous local
 * day or month for all users, grouped by user and model, and re-check recent exported periods for
 * late data. One replica per tick: the first to take the tick's database lease.
 */
@Injectable()
export class ScheduledExportsService {
  private readonly logger = new Logger(ScheduledExportsService.name);
  /** Ticks this process ran (took the lease for); read by tests of the once-per-tick rule. */
  ticksRun = 0;
  /** Ticks that found the period already claimed (by another replica or an earlier tick). */
  ticksSkipped = 0;

  constructor(
    private readonly exporter: BillingExportService,
    private readonly lease: JobLeaseService,
    @InjectWriteDataSource() private readonly write: DataSource,
    @Inject(billingConfig.KEY) private readonly config: ConfigType<typeof billingConfig>,
  ) {}

  async runScheduled(kind: 'daily' | 'monthly', nowMs = Date.now()): Promise<ScheduledRun> {
    const period = previousPeriod(kind, nowMs, this.config.timeZone);
    if (!(await this.lease.claim(`billing-${kind}:${period.startMs}`, TICK_LEASE_TTL_MS, nowMs))) {
      this.ticksSkipped++;
      return { ran: false, period, outcomes: [] };
    }
    this.ticksRun++;
    const outcomes: ExportOutcome[] = [];
    for (const p of [period, ...(await this.recentlyExported(kind, period))]) {
      try {
        outcomes.push(await this.exporter.run({ period: p, groupBy: DEFAULT_GROUP_BY, userId: null, createdBy: 'schedule' }));
      } catch (err) {
        // An exported period that retention has since reached is left as exported, not re-checked.
        if (p !== period && err instanceof BillingPeriodPastRetentionException) continue;
        this.logger.error(`scheduled ${kind} export of ${new Date(p.startMs).toISOString()} failed: ${(err as Error).message}`);
      }
    }
    return { ran: true, period, outcomes };
  }

  /** Earlier periods of this kind within the look-back that already have a scheduled export. */
  private async recentlyExported(kind: 'daily' | 'monthly', period: BillingPeriod): Promise<BillingPeriod[]> {
    const since = DateTime.fromMillis(period.startMs, { zone: period.timeZone })
      .minus(kind === 'daily' ? { days: LATE_DATA_LOOKBACK.daily } : { months: LATE_DATA_LOOKBACK.monthly })
      .toMillis();
    const rows = await this.write
      .getRepository(BillingExport)
      .createQueryBuilder('e')
      .select(['e.periodStartMs', 'e.periodEndMs'])
      .where('e.kind = :kind AND e.status = :current AND e.user_id IS NULL AND e.group_by = :groupBy', { kind, current: 'current', groupBy: DEFAULT_GROUP_BY.join(',') })
      .andWhere('e.time_zone = :tz AND e.period_start_ms >= :since AND e.period_start_ms < :start', { tz: period.timeZone, since, start: period.startMs })
      .orderBy('e.period_start_ms', 'ASC')
      .getMany();
    return rows.map((r) => ({ kind, startMs: r.periodStartMs, endMs: r.periodEndMs, timeZone: period.timeZone }));
  }
}
