import { ceilDay, ceilHour, ceilWeek, floorDay, floorHour, floorWeek } from './rollups/rollup-schema';

/** Where a part of a window is read from: raw rows, or the rollup of that period. */
export type PartSource = 'raw' | 'hour' | 'day' | 'week';

/** `[fromMs, toMs)`; toMs null: every row from fromMs on (the open end of a window ending now). */
export interface WindowPart {
  source: PartSource;
  fromMs: number;
  toMs: number | null;
}

/**
 * Splits the window `[sinceMs, end)` into parts that tile it without overlap, each read from the
 * coarsest source that holds it whole, never coarser than `coarsest`: raw rows for the partial
 * hours at each end, hours up to the first whole day and from the last, days up to the first whole
 * week and from the last, whole weeks in between. Every boundary is one of the two periods'
 * boundaries, so a row belongs to exactly one part. `untilMs` null: the window is open at
 * `nowMs` (its last raw part keeps every row from its start on, even one written after `nowMs`,
 * as a window ending now does); otherwise the window ends at `untilMs`.
 */
export function windowParts(sinceMs: number, nowMs: number, untilMs: number | null, coarsest: Exclude<PartSource, 'raw'>): WindowPart[] {
  const end = untilMs ?? nowMs;
  const h0 = ceilHour(sinceMs);
  const h1 = floorHour(end);
  if (h0 >= h1) return [{ source: 'raw', fromMs: sinceMs, toMs: untilMs }];
  const parts: WindowPart[] = [];
  const add = (source: PartSource, fromMs: number, toMs: number) => {
    if (fromMs < toMs) parts.push({ source, fromMs, toMs });
  };
  add('raw', sinceMs, h0);
  const d0 = ceilDay(h0);
  const d1 = floorDay(h1);
  if (coarsest !== 'hour' && d0 < d1) {
    add('hour', h0, d0);
    const w0 = ceilWeek(d0);
    const w1 = floorWeek(d1);
    if (coarsest === 'week' && w0 < w1) {
      add('day', d0, w0);
      add('week', w0, w1);
      add('day', w1, d1);
    } else {
      add('day', d0, d1);
    }
    add('hour', d1, h1);
  } else {
    add('hour', h0, h1);
  }
  if (untilMs === null || h1 < untilMs) parts.push({ source: 'raw', fromMs: h1, toMs: untilMs });
  return parts;
}
