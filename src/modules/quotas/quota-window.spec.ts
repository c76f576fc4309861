import { windowAt } from './quota-window';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

describe('quota windows', () => {
  it('a day in a time zone is its local day, 23 hours on the spring DST change', () => {
    const w = windowAt({ kind: 'day' }, Date.parse('2026-03-29T12:00:00Z'), 'Europe/Paris');
    expect(iso(w.startMs)).toBe('2026-03-28T23:00:00.000Z'); // midnight CET
    expect(iso(w.endMs)).toBe('2026-03-29T22:00:00.000Z'); // next midnight, CEST
    expect(w.key).toBe(`day:${w.startMs}`);
  });

  it('a week starts on Monday at local midnight; a month at the 1st', () => {
    const now = Date.parse('2026-11-05T03:00:00Z'); // Wednesday 22:00 on the 4th in New York
    const week = windowAt({ kind: 'week' }, now, 'America/New_York');
    expect(iso(week.startMs)).toBe('2026-11-02T05:00:00.000Z');
    expect(iso(week.endMs)).toBe('2026-11-09T05:00:00.000Z');
    const month = windowAt({ kind: 'month' }, now, 'America/New_York');
    expect(iso(month.startMs)).toBe('2026-11-01T04:00:00.000Z'); // EDT until Nov 1, 2:00
    expect(iso(month.endMs)).toBe('2026-12-01T05:00:00.000Z');
    expect(iso(windowAt({ kind: 'month' }, now, 'UTC').startMs)).toBe('2026-11-01T00:00:00.000Z');
  });

  it('a rolling window ends now; its alerts are deduplicated per N-hour period', () => {
    const now = Date.parse('2026-11-05T13:30:00Z');
    const w = windowAt({ kind: 'rolling', hours: 6 }, now, 'UTC');
    expect(iso(w.startMs)).toBe('2026-11-05T07:30:00.000Z');
    expect(iso(w.endMs)).toBe('2026-11-05T13:30:00.000Z');
    expect(w.alertStart).toBe('2026-11-05T12:00:00.000Z');
    expect(w.alertEnd).toBe('2026-11-05T18:00:00.000Z');
  });

  it('a task window is the whole task', () => {
    expect(windowAt({ kind: 'task' }, Date.now(), 'UTC')).toMatchObject({ kind: 'task', startMs: null, endMs: null, alertEnd: null });
  });
});
