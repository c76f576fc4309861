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
export function nanosToUsdExact(nanos: bigint): string {
  const neg = nanos < 0n;
  const abs = neg ? -nanos : nanos;
  return `${neg ? '-' : ''}${abs / NANOS_PER_USD}.${(abs % NANOS_PER_USD).toString().padStart(9, '0')}`;
}

/** USD as a JSON number: the nearest double to the exact nano-dollar amount. */
export function nanosToUsd(nanos: bigint): number {
  return Number(nanosToUsdExact(nanos));
}
