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
 * Splits the window from `sinceMs` into parts that tile it without overlap, each read from the
 * coarsest source that holds it whole, never coarser than `coarsest`. Every boundary is a
 * boundary of the periods on both sides, so a row belongs to exactly one part.
 *
 * `untilMs` null: the window ends now and is open (it counts every row from `sinceMs` on, even
 * one stamped after now by another replica's clock). A rollup's rows from a period's start
 * on then hold exactly the raw rows from that start on, so after the partial periods at the start
 * (raw rows for the partial hour, hours up to the first whole day, days up to the first whole
 * week) one open part of the coarsest rollup holds the rest: no raw rows at the end.
 *
 * Otherwise the window ends at `untilMs`: raw rows for the partial hours at each end, hours up to
 * the first whole day and from the last, days up to the first whole week and from the last,
 * whole weeks in between.
 */
export function windowParts(sinceMs: number, untilMs: number | null, coarsest: Exclude<PartSource, 'raw'>): WindowPart[] {
  const parts: WindowPart[] = [];
  const add = (source: PartSource, fromMs: number, toMs: number) => {
    if (fromMs < toMs) parts.push({ source, fromMs, toMs });
  };
  const h0 = ceilHour(sinceMs);
  if (untilMs === null) {
    add('raw', sinceMs, h0);
    let from = h0;
    if (coarsest !== 'hour') {
      const d0 = ceilDay(h0);
      add('hour', h0, d0);
      from = d0;
      if (coarsest === 'week') {
        const w0 = ceilWeek(d0);
        add('day', d0, w0);
        from = w0;
      }
    }
    parts.push({ source: coarsest, fromMs: from, toMs: null });
    return parts;
  }
  const h1 = floorHour(untilMs);
  if (h0 >= h1) return [{ source: 'raw', fromMs: sinceMs, toMs: untilMs }];
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
  add('raw', h1, untilMs);
  return parts;
}
