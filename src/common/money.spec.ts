import { nanosToUsd, nanosToUsdExact, parseNanos, usdToNanos } from './money';

describe('money', () => {
  it('formats nano-dollars exactly with 9 decimals', () => {
    expect(nanosToUsdExact(0n)).toBe('0.000000000');
    expect(nanosToUsdExact(1n)).toBe('0.000000001');
    expect(nanosToUsdExact(1_234_567_890n)).toBe('1.234567890');
    expect(nanosToUsdExact(-5n)).toBe('-0.000000005');
    expect(nanosToUsdExact(123_456_789_012_345_678_901n)).toBe('123456789012.345678901');
  });

  it('parses SQL sums from either driver and refuses floats', () => {
    expect(parseNanos(null)).toBe(0n);
    expect(parseNanos('9007199254740993')).toBe(9007199254740993n);
    expect(parseNanos(42)).toBe(42n);
    expect(() => parseNanos('1.5')).toThrow(/integer/);
  });

  it('rounds to the nearest double only for the number form', () => {
    expect(nanosToUsd(250_000_000n)).toBe(0.25);
    expect(nanosToUsd(100_000_000n + 200_000_000n)).toBe(0.3);
  });

  it('reads USD amounts from their decimal form, half-up past nine decimals', () => {
    expect(usdToNanos(0.1)).toBe(100_000_000n);
    expect(usdToNanos(2.5)).toBe(2_500_000_000n);
    expect(usdToNanos(0.000000001)).toBe(1n);
    expect(usdToNanos(1e-12)).toBe(0n);
    expect(usdToNanos(0.0000000015)).toBe(2n);
    expect(usdToNanos(-1)).toBeNull();
    expect(usdToNanos(Number.NaN)).toBeNull();
  });
});
