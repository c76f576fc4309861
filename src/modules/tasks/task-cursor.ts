/**
 * Opaque keyset cursor of the task list: the (created_at_ms, id) of the last row of the page,
 * base64url-encoded so clients do not build it themselves.
 */
export interface TaskCursor {
  createdAtMs: number;
  id: string;
}

export function encodeTaskCursor(c: TaskCursor): string {
  return Buffer.from(`${c.createdAtMs}:${c.id}`, 'utf8').toString('base64url');
}

/** Null when the value is not a cursor this service issued. */
export function decodeTaskCursor(value: string): TaskCursor | null {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(value)) return null;
  const raw = Buffer.from(value, 'base64url').toString('utf8');
  const m = /^(\d{1,16}):([0-9a-f-]{36})$/.exec(raw);
  if (!m) return null;
  return { createdAtMs: Number(m[1]), id: m[2] };
}
