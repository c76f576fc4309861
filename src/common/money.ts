import { divRoundHalfUp, parseDecimal } from './decimal';

/*
 * Money is integer nano-dollars (1e-9 USD) everywhere: per record, in SQL sums, in totals. These
 * are the only conversions to and from USD, so no figure picks up floating-point drift.
 */

const NANOS_PER_USD = 1_000_000_000n;

/**
 * A SQL `CAST(SUM(cost_nanos) AS TEXT)` (or any integer count of nano-dollars) as a BigInt.
 * Both databases sum the BIGINT column exactly; the text cast keeps PostgreSQL's NUMERIC and
 * SQLite's 64-bit integer away from JavaScript floats.
 */
export function parseNanos(value: unknown): bigint {
  if (value === null || value === undefined || value === '') return 0n;
  if (typeof value === 'bigint') return value;
  const s = String(value).trim();
  if (!/^-?\d+$/.test(s)) throw new Error(`expected an integer sum of nano-dollars, got "${s}"`);
  return BigInt(s);
}

/** Exact USD decimal string with 9 decimals: 1234567890n -> "1.234567890". */
export function nanosToUsdExact(nanos: bigint | number): string {
  const n = BigInt(nanos);
  const abs = n < 0n ? -n : n;
  return `${n < 0n ? '-' : ''}${abs / NANOS_PER_USD}.${(abs % NANOS_PER_USD).toString().padStart(9, '0')}`;
}

/** USD as a JSON number: the nearest double to the exact nano-dollar amount. */
export function nanosToUsd(nanos: bigint | number): number {
  return Number(nanosToUsdExact(nanos));
}

/**
 * A non-negative USD amount (from an API field or config) as nano-dollars, read from the number's
 * decimal form and rounded half-up past the 9th decimal; null when it is not a non-negative number.
 */
export function usdToNanos(usd: number): bigint | null {
  const d = typeof usd === 'number' ? parseDecimal(usd) : null;
  if (!d) return null;
  if (d.scale <= 9) return d.units * 10n ** BigInt(9 - d.scale);
  return divRoundHalfUp(d.units, 10n ** BigInt(d.scale - 9));
}
