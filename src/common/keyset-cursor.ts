/**
 * Opaque keyset cursor of a list ordered by (time, id), newest first: the (ms, id) of the last row
 * of a page, base64url-encoded so clients pass it back without building it. The task, alert and
 * billing export lists use it; the next page is the rows strictly before it in that order.
 */
export interface KeysetCursor {
  /** The last row's sort time, epoch ms. */
  ms: number;
  /** The last row's id (a UUID), the tie-break between rows of the same millisecond. */
  id: string;
}

export function encodeKeysetCursor(c: KeysetCursor): string {
  return Buffer.from(`${c.ms}:${c.id}`, 'utf8').toString('base64url');
}

/** Null when the value is not a cursor this service issued. */
export function decodeKeysetCursor(value: string): KeysetCursor | null {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(value)) return null;
  const m = /^(\d{1,16}):([0-9a-f-]{36})$/.exec(Buffer.from(value, 'base64url').toString('utf8'));
  return m ? { ms: Number(m[1]), id: m[2] } : null;
}
