import { classifyPeriod, localDays, localIso, parseBound, periodLabel, previousPeriod } from './billing-period';

const LA = 'America/Los_Angeles';

describe('billing periods', () => {
  it('reads a date as local midnight and a timestamp as given', () => {
    expect(parseBound('2026-11-25', LA)).toBe(Date.parse('2026-11-25T08:00:00Z'));
    expect(parseBound('2026-11-25T10:00:00Z', LA)).toBe(Date.parse('2026-11-25T10:00:00Z'));
    expect(parseBound('2026-11-25T10:00:00+01:00', 'UTC')).toBe(Date.parse('2026-11-25T09:00:00Z'));
    for (const bad of ['2026-02-30', '2026-13-01', 'yesterday', '', '1764547200000', '2026-11-25T25:00']) expect(parseBound(bad, LA)).toBeNull();
  });

  it('names whole local days and months, also across a DST change (a 25-hour day)', () => {
    const start = Date.parse('2026-11-01T07:00:00Z'); // midnight PDT; the day ends at midnight PST
    expect(classifyPeriod(start, Date.parse('2026-11-02T08:00:00Z'), LA).kind).toBe('daily');
    expect(classifyPeriod(start, start + 86_400_000, LA).kind).toBe('custom');
    expect(classifyPeriod(start, Date.parse('2026-12-01T08:00:00Z'), LA).kind).toBe('monthly');
    expect(periodLabel(classifyPeriod(start, Date.parse('2026-12-01T08:00:00Z'), LA))).toBe('2026-11');
  });

  it('the previous local day and month of an instant', () => {
    const now = Date.parse('2026-12-01T07:30:00Z'); // still 30 November in Los Angeles
    const day = previousPeriod('daily', now, LA);
    expect([localIso(day.startMs, LA), localIso(day.endMs, LA)]).toEqual(['2026-11-29T00:00:00-08:00', '2026-11-30T00:00:00-08:00']);
    const month = previousPeriod('monthly', now, LA);
    expect([localIso(month.startMs, LA), localIso(month.endMs, LA)]).toEqual(['2026-10-01T00:00:00-07:00', '2026-11-01T00:00:00-07:00']);
  });

  it('lists the local days a period overlaps, the first clipped to its start', () => {
    const p = classifyPeriod(Date.parse('2026-11-24T20:00:00Z'), Date.parse('2026-11-26T08:00:00Z'), LA);
    expect(localDays(p)).toEqual([
      { label: '2026-11-24', startMs: Date.parse('2026-11-24T20:00:00Z') },
      { label: '2026-11-25', startMs: Date.parse('2026-11-25T08:00:00Z') },
    ]);
  });
});
