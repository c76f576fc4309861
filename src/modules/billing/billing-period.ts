import { DateTime } from 'luxon';
import type { ExportKind } from './entities/billing-export.entity';
import { hasPossibleUtcOffset } from '../../common/utc-offset';

/** An export period [startMs, endMs) and how it reads in the billing time zone. */
export interface BillingPeriod {
  kind: ExportKind;
  startMs: number;
  endMs: number;
  timeZone: string;
}

/** The longest period one export may cover (a year and a day, so any calendar year fits). */
export const MAX_PERIOD_DAYS = 366;

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * Reads an API bound: a date (`2026-11-25`, midnight starting that day in the billing time zone) or
 * an ISO 8601 timestamp (with an offset or `Z`; without one it is local to the billing time zone).
 * Null when it is neither, or names a day that does not exist.
 */
export function parseBound(value: string, timeZone: string): number | null {
  const text = value.trim();
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$/.test(text)) return null;
  if (!hasPossibleUtcOffset(text)) return null;
  const dt = DateTime.fromISO(text.replace(' ', 'T'), { zone: timeZone });
  return dt.isValid ? dt.toMillis() : null;
}

export function isDateOnly(value: string): boolean {
  return DATE_ONLY.test(value.trim());
}

/**
 * Names the period: a whole local day is `daily` and a whole local month `monthly`, whether the
 * schedule or the API asked for it, so both produce the same series (and the same file versions).
 */
export function classifyPeriod(startMs: number, endMs: number, timeZone: string): BillingPeriod {
  const start = DateTime.fromMillis(startMs, { zone: timeZone });
  const isMidnight = start.equals(start.startOf('day'));
  let kind: ExportKind = 'custom';
  if (isMidnight && start.plus({ days: 1 }).toMillis() === endMs) kind = 'daily';
  else if (isMidnight && start.day === 1 && start.plus({ months: 1 }).toMillis() === endMs) kind = 'monthly';
  return { kind, startMs, endMs, timeZone };
}

/** The local day (or month) before the one `nowMs` falls in: what a scheduled run exports. */
export function previousPeriod(kind: 'daily' | 'monthly', nowMs: number, timeZone: string): BillingPeriod {
  const unit = kind === 'daily' ? 'day' : 'month';
  const end = DateTime.fromMillis(nowMs, { zone: timeZone }).startOf(unit);
  const start = end.minus(kind === 'daily' ? { days: 1 } : { months: 1 });
  return { kind, startMs: start.toMillis(), endMs: end.toMillis(), timeZone };
}

/** Local days overlapping the period: each day's label and start (the first one clipped to the period). */
export function localDays(period: BillingPeriod): { label: string; startMs: number }[] {
  const days: { label: string; startMs: number }[] = [];
  let day = DateTime.fromMillis(period.startMs, { zone: period.timeZone }).startOf('day');
  while (day.toMillis() < period.endMs) {
    days.push({ label: day.toISODate()!, startMs: Math.max(day.toMillis(), period.startMs) });
    day = day.plus({ days: 1 });
  }
  return days;
}

/** An instant as ISO 8601 with the billing time zone's offset (`2026-11-25T00:00:00-08:00`). */
export function localIso(ms: number, timeZone: string): string {
  return DateTime.fromMillis(ms, { zone: timeZone }).toISO({ suppressMilliseconds: true })!;
}

/** The period part of a file name: `2026-11-25`, `2026-11`, or `<start>_<end>` compact local times. */
export function periodLabel(period: BillingPeriod): string {
  const start = DateTime.fromMillis(period.startMs, { zone: period.timeZone });
  if (period.kind === 'daily') return start.toISODate()!;
  if (period.kind === 'monthly') return start.toFormat('yyyy-MM');
  const end = DateTime.fromMillis(period.endMs, { zone: period.timeZone });
  return `${start.toFormat("yyyyMMdd'T'HHmmss")}_${end.toFormat("yyyyMMdd'T'HHmmss")}`;
}
