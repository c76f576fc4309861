import { DAY_MS, HOUR_MS, WEEK_MS } from './rollups/rollup-schema';
import { PartSource, windowParts } from './window-parts';

const WIDTH: Record<PartSource, number> = { raw: 1, hour: HOUR_MS, day: DAY_MS, week: WEEK_MS };
const RANK: Record<PartSource, number> = { raw: 0, hour: 1, day: 2, week: 3 };

/** The parts tile [since, end) in order, each on its source's boundaries, none coarser than allowed. */
function expectTiling(sinceMs: number, nowMs: number, untilMs: number | null, coarsest: 'hour' | 'day' | 'week') {
  const parts = windowParts(sinceMs, nowMs, untilMs, coarsest);
  const end = untilMs ?? nowMs;
  expect(parts[0].fromMs).toBe(sinceMs);
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i];
    const to = p.toMs ?? end;
    expect(p.fromMs, JSON.stringify(parts)).toBeLessThanOrEqual(to);
    if (p.source !== 'raw') {
      expect(p.fromMs < to).toBe(true);
      expect(p.fromMs % WIDTH[p.source]).toBe(0);
      expect(to % WIDTH[p.source]).toBe(0);
    }
    expect(RANK[p.source]).toBeLessThanOrEqual(RANK[coarsest]);
    if (i > 0) expect(p.fromMs).toBe(parts[i - 1].toMs);
    // Only the last part may be open, and only when the window is.
    if (p.toMs === null) expect([i, untilMs]).toEqual([parts.length - 1, null]);
  }
  const last = parts[parts.length - 1];
  expect(last.toMs ?? end).toBe(end);
  return parts;
}

describe('windowParts', () => {
  // A week boundary (7-day epochs from the Unix epoch: a Thursday, 00:00 UTC).
  const week = 2_900 * WEEK_MS;

  it('reads whole weeks from the weekly rollup, days and hours around them, raw rows at the partial edges', () => {
    const since = week - 3 * DAY_MS - 5 * HOUR_MS - 1234;
    const now = week + 2 * WEEK_MS + 2 * DAY_MS + 7 * HOUR_MS + 99;
    expect(expectTiling(since, now, null, 'week').map((p) => [p.source, p.fromMs, p.toMs])).toEqual([
      ['raw', since, week - 3 * DAY_MS - 5 * HOUR_MS],
      ['hour', week - 3 * DAY_MS - 5 * HOUR_MS, week - 3 * DAY_MS],
      ['day', week - 3 * DAY_MS, week],
      ['week', week, week + 2 * WEEK_MS],
      ['day', week + 2 * WEEK_MS, week + 2 * WEEK_MS + 2 * DAY_MS],
      ['hour', week + 2 * WEEK_MS + 2 * DAY_MS, week + 2 * WEEK_MS + 2 * DAY_MS + 7 * HOUR_MS],
      ['raw', week + 2 * WEEK_MS + 2 * DAY_MS + 7 * HOUR_MS, null],
    ]);
  });

  it('windows starting or ending on, just before or just after a week edge tile exactly', () => {
    const offsets = [-WEEK_MS, -DAY_MS - 1, -DAY_MS, -HOUR_MS - 1, -HOUR_MS, -1, 0, 1, HOUR_MS, HOUR_MS + 1, DAY_MS, DAY_MS + 1];
    for (const a of offsets) {
      for (const b of offsets) {
        for (const weeks of [0, 1, 3]) {
          const since = week + a;
          const end = week + weeks * WEEK_MS + b;
          if (end <= since) continue;
          for (const coarsest of ['hour', 'day', 'week'] as const) {
            expectTiling(since, end, null, coarsest);
            expectTiling(since, end + 5 * HOUR_MS, end, coarsest);
          }
        }
      }
    }
    // Starting exactly on a week edge, a whole week later: one weekly part, nothing else but the open end.
    expect(windowParts(week, week + WEEK_MS, null, 'week')).toEqual([
      { source: 'week', fromMs: week, toMs: week + WEEK_MS },
      { source: 'raw', fromMs: week + WEEK_MS, toMs: null },
    ]);
    // A window pinned at an hour edge has no raw part after it.
    expect(windowParts(week, week + WEEK_MS + 2 * HOUR_MS, week + WEEK_MS, 'week')).toEqual([{ source: 'week', fromMs: week, toMs: week + WEEK_MS }]);
  });

  it('tiles random windows (seeded) at every coarseness', () => {
    let x = 42;
    const rnd = () => ((x = (x * 1103515245 + 12345) % 2147483648), x / 2147483648);
    for (let i = 0; i < 2000; i++) {
      const since = week + Math.floor((rnd() - 0.5) * 8 * WEEK_MS);
      const end = since + Math.floor(rnd() * 100 * DAY_MS);
      for (const coarsest of ['hour', 'day', 'week'] as const) expectTiling(since, end, rnd() < 0.5 ? null : end, coarsest);
    }
  });

  it('a window inside one hour is raw rows only', () => {
    expect(windowParts(week + 10, week + 20, null, 'week')).toEqual([{ source: 'raw', fromMs: week + 10, toMs: null }]);
  });
});
