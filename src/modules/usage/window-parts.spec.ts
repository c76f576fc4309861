import { DAY_MS, HOUR_MS, WEEK_MS } from './rollups/rollup-schema';
import { PartSource, windowParts } from './window-parts';

const WIDTH: Record<PartSource, number> = { raw: 1, hour: HOUR_MS, day: DAY_MS, week: WEEK_MS };
const RANK: Record<PartSource, number> = { raw: 0, hour: 1, day: 2, week: 3 };

/**
 * The parts tile the window in order (up to `untilMs`, or from `sinceMs` on when open), each on
 * its source's boundaries, none coarser than allowed; only an open window's last part is open.
 */
function expectTiling(sinceMs: number, untilMs: number | null, coarsest: 'hour' | 'day' | 'week') {
  const parts = windowParts(sinceMs, untilMs, coarsest);
  const seen = JSON.stringify(parts);
  expect(parts[0].fromMs, seen).toBe(sinceMs);
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    if (p.toMs !== null) expect(p.fromMs < p.toMs, seen).toBe(true);
    if (p.source !== 'raw') {
      expect(p.fromMs % WIDTH[p.source], seen).toBe(0);
      if (p.toMs !== null) expect(p.toMs % WIDTH[p.source], seen).toBe(0);
    }
    expect(RANK[p.source]).toBeLessThanOrEqual(RANK[coarsest]);
    if (i > 0) expect(p.fromMs, seen).toBe(parts[i - 1].toMs);
    if (p.toMs === null) expect([i, untilMs], seen).toEqual([parts.length - 1, null]);
  }
  expect(parts[parts.length - 1].toMs, seen).toBe(untilMs);
  return parts;
}

describe('windowParts', () => {
  // A week boundary (7-day epochs from the Unix epoch: a Thursday, 00:00 UTC).
  const week = 2_900 * WEEK_MS;
  const since = week - 3 * DAY_MS - 5 * HOUR_MS - 1234;
  const end = week + 2 * WEEK_MS + 2 * DAY_MS + 7 * HOUR_MS + 99;

  it('a window ending at a time: raw rows at the partial edges, hours and days around whole weeks', () => {
    expect(expectTiling(since, end, 'week').map((p) => [p.source, p.fromMs, p.toMs])).toEqual([
      ['raw', since, week - 3 * DAY_MS - 5 * HOUR_MS],
      ['hour', week - 3 * DAY_MS - 5 * HOUR_MS, week - 3 * DAY_MS],
      ['day', week - 3 * DAY_MS, week],
      ['week', week, week + 2 * WEEK_MS],
      ['day', week + 2 * WEEK_MS, week + 2 * WEEK_MS + 2 * DAY_MS],
      ['hour', week + 2 * WEEK_MS + 2 * DAY_MS, week + 2 * WEEK_MS + 2 * DAY_MS + 7 * HOUR_MS],
      ['raw', week + 2 * WEEK_MS + 2 * DAY_MS + 7 * HOUR_MS, end],
    ]);
  });

  it('a window ending now: the partial periods at its start, then the coarsest rollup from its first whole period on', () => {
    expect(expectTiling(since, null, 'week').map((p) => [p.source, p.fromMs, p.toMs])).toEqual([
      ['raw', since, week - 3 * DAY_MS - 5 * HOUR_MS],
      ['hour', week - 3 * DAY_MS - 5 * HOUR_MS, week - 3 * DAY_MS],
      ['day', week - 3 * DAY_MS, week],
      ['week', week, null],
    ]);
    expect(expectTiling(since, null, 'day').map((p) => p.source)).toEqual(['raw', 'hour', 'day']);
    expect(expectTiling(since, null, 'hour').map((p) => [p.source, p.toMs])).toEqual([
      ['raw', week - 3 * DAY_MS - 5 * HOUR_MS],
      ['hour', null],
    ]);
    // Starting on a week edge: the weekly rollup alone.
    expect(windowParts(week, null, 'week')).toEqual([{ source: 'week', fromMs: week, toMs: null }]);
  });

  it('windows starting or ending on, just before or just after a week edge tile exactly', () => {
    const offsets = [-WEEK_MS, -DAY_MS - 1, -DAY_MS, -HOUR_MS - 1, -HOUR_MS, -1, 0, 1, HOUR_MS, HOUR_MS + 1, DAY_MS, DAY_MS + 1];
    for (const a of offsets) {
      for (const coarsest of ['hour', 'day', 'week'] as const) {
        expectTiling(week + a, null, coarsest);
        for (const b of offsets) {
          for (const weeks of [0, 1, 3]) {
            const until = week + weeks * WEEK_MS + b;
            if (until > week + a) expectTiling(week + a, until, coarsest);
          }
        }
      }
    }
    // Ending on an hour edge: no raw part after it.
    expect(windowParts(week, week + WEEK_MS, 'week')).toEqual([{ source: 'week', fromMs: week, toMs: week + WEEK_MS }]);
  });

  it('tiles random windows (seeded) at every coarseness', () => {
    let x = 42;
    const rnd = () => ((x = (x * 1103515245 + 12345) % 2147483648), x / 2147483648);
    for (let i = 0; i < 2000; i++) {
      const from = week + Math.floor((rnd() - 0.5) * 8 * WEEK_MS);
      const until = from + 1 + Math.floor(rnd() * 100 * DAY_MS);
      for (const coarsest of ['hour', 'day', 'week'] as const) expectTiling(from, rnd() < 0.5 ? null : until, coarsest);
    }
  });

  it('a window inside one hour is raw rows only', () => {
    expect(windowParts(week + 10, week + 20, 'week')).toEqual([{ source: 'raw', fromMs: week + 10, toMs: week + 20 }]);
  });
});
