import { hasPossibleUtcOffset } from './utc-offset';

describe('hasPossibleUtcOffset', () => {
  it.each(['2026-11-01', '2026-11-01T00:00:00Z', '2026-11-01T00:00', '2026-11-01T00:00:00+14:00', '2026-11-01T00:00:00-12:00', '2026-11-01T05:30+0530', '2026-11-01T00:00:00.123-03:30', '2026-11-01T00:00:00+01'])(
    'accepts %s',
    (t) => expect(hasPossibleUtcOffset(t)).toBe(true),
  );
  it.each(['2026-11-01T00:00:00+25:00', '2026-11-01T00:00:00+99:99', '2026-11-01T00:00:00-13:00', '2026-11-01T00:00:00+14:30', '2026-11-01T00:00:00+01:60', '2026-11-01T00:00+1500'])(
    'refuses %s',
    (t) => expect(hasPossibleUtcOffset(t)).toBe(false),
  );
});
