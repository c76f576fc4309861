/**
 * Opaque keyset cursor of the usage record list: the (created_at_ms, id) of the last row of the
 * page, base64url-encoded so clients pass it back unchanged instead of building it.
 */
export interface UsageRecordCursor {
  createdAtMs: number;
  id: string;
}

export function encodeUsageRecordCursor(c: UsageRecordCursor): string {
  return Buffer.from(`${c.createdAtMs}:${c.id}`, 'utf8').toString('base64url');
}

/** Null when the value is not a cursor this service issued. */
export function decodeUsageRecordCursor(value: string): UsageRecordCursor | null {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(value)) return null;
  const raw = Buffer.from(value, 'base64url').toString('utf8');
  // Record ids are the column's 1-36 characters; a plugin may choose other ids than UUIDs.
  const m = /^(\d{1,16}):([\x21-\x7e]{1,36})$/.exec(raw);
  if (!m) return null;
  return { createdAtMs: Number(m[1]), id: m[2] };
}
