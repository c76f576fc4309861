/**
 * Money arrives as exact 9-decimal strings (`*_cost_usd_exact`); it is shown from that string,
 * never through a float: trailing zeros are dropped (keeping cents), nothing is rounded, and the
 * full string is the tooltip.
 */
export function usdText(exact: string | null | undefined): string {
  if (exact === null || exact === undefined) return '—';
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(exact);
  if (!m) return exact;
  const [, sign, int, frac = ''] = m;
  let decimals = frac.replace(/0+$/, '');
  if (decimals.length < 2) decimals = decimals.padEnd(2, '0');
  return `${sign}$${int.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${decimals}`;
}

export const usdTitle = (exact: string | null | undefined) => (exact === null || exact === undefined ? 'no cost: unpriced' : `${exact} USD (exact)`);

/** Adds exact USD strings without floats (nano-dollars as BigInt). */
export function addUsd(values: (string | null | undefined)[]): string {
  let nanos = 0n;
  for (const v of values) if (v) nanos += toNanos(v);
  return fromNanos(nanos);
}

export function toNanos(exact: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d{1,9}))?$/.exec(exact);
  if (!m) return 0n;
  const n = BigInt(m[2]) * 1_000_000_000n + BigInt((m[3] ?? '').padEnd(9, '0'));
  return m[1] ? -n : n;
}

export function fromNanos(n: bigint): string {
  const neg = n < 0n;
  const a = neg ? -n : n;
  return `${neg ? '-' : ''}${a / 1_000_000_000n}.${(a % 1_000_000_000n).toString().padStart(9, '0')}`;
}

const nf = new Intl.NumberFormat('en-US');
export const num = (n: number | null | undefined) => (n === null || n === undefined ? '—' : nf.format(n));
export const pct = (n: number | null | undefined) => (n === null || n === undefined ? '—' : `${Math.round(n * 100) / 100} %`);
export const ms = (n: number | null | undefined) => (n === null || n === undefined ? '—' : n >= 1000 ? `${(n / 1000).toFixed(2)} s` : `${Math.round(n)} ms`);

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  return m < 60 ? `${m} min ${Math.round(seconds % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}
