import { divRound, nanosToUsd, nanosToUsdString, toNanos, usdToNanos } from './money';
import { decodeTaskCursor, encodeTaskCursor } from './task-cursor';

describe('task money helpers', () => {
  it('reads SQL sums from either database exactly', () => {
    expect(toNanos(null)).toBe(0n);
    expect(toNanos(1234)).toBe(1234n);
    expect(toNanos('9007199254740993')).toBe(9007199254740993n);
    expect(toNanos('42.000')).toBe(42n);
  });

  it('formats and parses USD without drift', () => {
    expect(nanosToUsdString(250_000_000n)).toBe('0.250000000');
    expect(nanosToUsdString(12_345_678_901n)).toBe('12.345678901');
    expect(nanosToUsd(100_000_001n)).toBe(0.100000001);
    expect(usdToNanos(0.1)).toBe(100_000_000n);
    expect(usdToNanos(2.5)).toBe(2_500_000_000n);
    expect(usdToNanos(0.000000001)).toBe(1n);
  });

  it('rounds averages half up', () => {
    expect(divRound(10n, 4n)).toBe(3n);
    expect(divRound(10n, 3n)).toBe(3n);
    expect(divRound(5n, 0n)).toBe(0n);
  });
});

describe('task list cursor', () => {
  it('round-trips and rejects anything it did not issue', () => {
    const c = { createdAtMs: 1764199000123, id: '0b8f5c2e-4f7a-4d55-9a55-2f1e7c9b1a10' };
    expect(decodeTaskCursor(encodeTaskCursor(c))).toEqual(c);
    expect(decodeTaskCursor('bm9wZQ')).toBeNull();
    expect(decodeTaskCursor('%%%')).toBeNull();
    expect(decodeTaskCursor(Buffer.from("1:'; DROP TABLE tasks; --").toString('base64url'))).toBeNull();
  });
});
