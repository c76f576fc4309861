/** Integer nano-dollars <-> USD, without floating-point drift in sums (sums are done in SQL on integers). */
export const NANOS_PER_USD = 1_000_000_000n;

/** SUM() comes back as a number (SQLite), a string (PostgreSQL BIGINT/NUMERIC) or null. */
export function toNanos(value: unknown): bigint {
  if (value === null || value === undefined || value === '') return 0n;
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') return BigInt(Math.round(value));
  const s = String(value);
  return BigInt(s.includes('.') ? s.slice(0, s.indexOf('.')) : s);
}

/** Exact decimal string, e.g. 1234567890n -> "1.234567890". */
export function nanosToUsdString(nanos: bigint): string {
  const neg = nanos < 0n;
  const abs = neg ? -nanos : nanos;
  const whole = abs / NANOS_PER_USD;
  const frac = (abs % NANOS_PER_USD).toString().padStart(9, '0');
  return `${neg ? '-' : ''}${whole}.${frac}`;
}

/** USD as a JSON number (rounded to the nano-dollar). */
export function nanosToUsd(nanos: bigint): number {
  return Number(nanosToUsdString(nanos));
}

/** A USD amount from the API (at most 9 decimals honoured) -> nano-dollars. */
export function usdToNanos(usd: number): bigint {
  const [whole, frac = ''] = usd.toFixed(9).split('.');
  return BigInt(whole) * NANOS_PER_USD + BigInt(frac.padEnd(9, '0'));
}

/** Rounded-half-up integer division, for averages of money. */
export function divRound(a: bigint, b: bigint): bigint {
  if (b === 0n) return 0n;
  return (a * 2n + b) / (2n * b);
}
