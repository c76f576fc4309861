/**
 * Opaque keyset cursor of GET /usage/users: the window's pinned end and days, and the (cost, user)
 * of the last user of the page, base64url-encoded so clients do not build it themselves.
 */
export interface UserCursor {
  days: number;
  nowMs: number;
  costNanos: bigint;
  key: string;
}

export function encodeUserCursor(c: UserCursor): string {
  return Buffer.from(`1:${c.days}:${c.nowMs}:${c.costNanos}:${c.key}`, 'utf8').toString('base64url');
}

/** Null when the value is not a cursor this service issued. */
export function decodeUserCursor(value: string): UserCursor | null {
  if (!/^[A-Za-z0-9_-]{1,400}$/.test(value)) return null;
  const m = /^1:(\d{1,5}):(\d{1,16}):(-?\d{1,30}):(.{1,128})$/s.exec(Buffer.from(value, 'base64url').toString('utf8'));
  if (!m) return null;
  return { days: Number(m[1]), nowMs: Number(m[2]), costNanos: BigInt(m[3]), key: m[4] };
}
