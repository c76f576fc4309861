/**
 * Exact decimals for prices: a rate is held as an integer of units of 10^-scale, so costs are
 * computed with BigInt and never pick up binary floating-point error.
 */
export interface Decimal {
  /** value = units / 10^scale */
  readonly units: bigint;
  readonly scale: number;
}

const DECIMAL_RE = /^(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/**
 * Parses a non-negative decimal from its string form (`"2.50"`, `"1e-7"`) or from a number, via
 * the number's shortest round-trip string (`0.075` -> `"0.075"`), never via float arithmetic.
 * Returns null for anything else (negative, NaN, Infinity, junk).
 */
export function parseDecimal(value: string | number): Decimal | null {
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  const text = (typeof value === 'number' ? String(value) : value).trim();
  const m = DECIMAL_RE.exec(text);
  if (!m) return null;
  const [, intPart, fracPart = '', expPart] = m;
  const exp = expPart === undefined ? 0 : Number(expPart);
  if (!Number.isSafeInteger(exp) || Math.abs(exp) > 100) return null;
  let digits = intPart + fracPart;
  let scale = fracPart.length - exp;
  if (scale < 0) {
    digits += '0'.repeat(-scale);
    scale = 0;
  }
  return { units: BigInt(digits), scale };
}

export function decimalToString(d: Decimal): string {
  if (d.scale === 0) return d.units.toString();
  const s = d.units.toString().padStart(d.scale + 1, '0');
  const text = `${s.slice(0, s.length - d.scale)}.${s.slice(s.length - d.scale)}`;
  return text.replace(/\.?0+$/, '');
}

/** Integer division rounding half up (both operands non-negative). */
export function divRoundHalfUp(numerator: bigint, denominator: bigint): bigint {
  const q = numerator / denominator;
  const r = numerator % denominator;
  return r * 2n >= denominator ? q + 1n : q;
}
