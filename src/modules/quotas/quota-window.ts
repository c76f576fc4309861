import { DateTime } from 'luxon';
import type { QuotaWindow } from './quota-rule';

export const HOUR_MS = 3_600_000;

/** The period a rule's spend is counted over at one instant. */
export interface WindowBounds {
  kind: 'task' | 'day' | 'week' | 'month' | 'rolling';
  /** Start of the counted period (inclusive), epoch ms; null for a task window (the whole task). */
  startMs: number | null;
  /** End (exclusive), epoch ms; null for a task window. For a rolling window, `now`. */
  endMs: number | null;
  /**
   * Identifies the period for counters and alert dedup: calendar windows by their start; a rolling
   * window by the N-hour period (aligned to the Unix epoch) the instant falls in, so a rolling rule
   * alerts at most once per threshold every N hours.
   */
  key: string;
  /** Start and end of the period alerts report and are deduplicated over (ISO 8601); both null for a task window (the task's whole life). */
  alertStart: string | null;
  alertEnd: string | null;
}

/**
 * Calendar periods are computed by luxon in the configured IANA zone, so a day is the local day
 * (23 or 25 hours across DST changes) and weeks start on Monday (ISO weeks).
 */
export function windowAt(w: QuotaWindow, nowMs: number, timeZone: string): WindowBounds {
  if (w.kind === 'task') return { kind: 'task', startMs: null, endMs: null, key: 'task', alertStart: null, alertEnd: null };
  if (w.kind === 'rolling') {
    const span = w.hours * HOUR_MS;
    const periodStart = Math.floor(nowMs / span) * span;
    return {
      kind: 'rolling',
      startMs: nowMs - span,
      endMs: nowMs,
      key: `rolling${w.hours}h:${periodStart}`,
      alertStart: new Date(periodStart).toISOString(),
      alertEnd: new Date(periodStart + span).toISOString(),
    };
  }
  const local = DateTime.fromMillis(nowMs, { zone: timeZone });
  const start = local.startOf(w.kind);
  const end = start.plus(w.kind === 'day' ? { days: 1 } : w.kind === 'week' ? { weeks: 1 } : { months: 1 });
  const startMs = start.toMillis();
  const endMs = end.toMillis();
  return {
    kind: w.kind,
    startMs,
    endMs,
    key: `${w.kind}:${startMs}`,
    alertStart: new Date(startMs).toISOString(),
    alertEnd: new Date(endMs).toISOString(),
  };
}

export function hourStart(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}
