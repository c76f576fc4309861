import { crc32 } from 'node:zlib';
import type { UsageOperation, UsageRecord } from '../../../plugins/sdk';

/** What is known of a call when it starts: enough to account it if the process dies before it ends. */
export interface CallStart {
  readonly id: string;
  readonly createdAtMs: number;
  readonly taskId: string | null;
  readonly userId: string | null;
  readonly provider: string;
  readonly operation: UsageOperation;
  readonly requestedModel: string;
  readonly streamed: boolean;
  readonly traceId: string | null;
  /**
   * Prompt tokens: the upper bound admission used (the prompt's UTF-8 bytes); a later `count`
   * entry gives the exact local count, which an interrupted call is charged when present.
   */
  readonly promptTokens: number;
  /** The call's tags, kept so a call interrupted by a crash is still found under them. */
  readonly tags?: Readonly<Record<string, string>> | null;
}

/** The process that wrote a segment: its first entry. */
export interface RunHeader {
  readonly pid: number;
  /** Wall-clock start of the writing process (epoch ms). */
  readonly startedAtMs: number;
}

export type JournalEntry =
  | { readonly t: 'run'; readonly run: RunHeader }
  | { readonly t: 'start'; readonly call: CallStart }
  | { readonly t: 'count'; readonly id: string; readonly promptTokens: number }
  | { readonly t: 'end'; readonly record: UsageRecord };

/**
 * One entry per line: `<crc32 of the JSON, 8 hex digits> <JSON>\n`. The checksum tells a torn or
 * damaged entry from a good one; the newline tells a complete entry from one cut by a crash.
 */
export function encodeEntry(entry: JournalEntry): string {
  const json = JSON.stringify(entry);
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

export interface DecodedSegment {
  readonly entries: JournalEntry[];
  /** Complete lines that failed their checksum or did not parse (skipped). */
  readonly corrupt: { line: number; reason: string }[];
  /** Bytes after the last newline: an entry the crash cut short (ignored). */
  readonly tornTailBytes: number;
}

export function decodeSegment(text: string): DecodedSegment {
  const entries: JournalEntry[] = [];
  const corrupt: { line: number; reason: string }[] = [];
  const end = text.lastIndexOf('\n') + 1;
  const lines = text.slice(0, end).split('\n');
  lines.pop(); // the empty string after the last newline
  lines.forEach((line, i) => {
    const reason = checkLine(line, entries);
    if (reason) corrupt.push({ line: i + 1, reason });
  });
  return { entries, corrupt, tornTailBytes: Buffer.byteLength(text.slice(end)) };
}

function checkLine(line: string, into: JournalEntry[]): string | null {
  const m = /^([0-9a-f]{8}) (.*)$/s.exec(line);
  if (!m) return 'not a journal entry';
  if (crc32(m[2]).toString(16).padStart(8, '0') !== m[1]) return 'checksum mismatch';
  let value: unknown;
  try {
    value = JSON.parse(m[2]);
  } catch (err) {
    return `invalid JSON: ${(err as Error).message}`;
  }
  if (!isEntry(value)) return 'unknown entry shape';
  into.push(value);
  return null;
}

function isEntry(v: unknown): v is JournalEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  const inner = (k: string) => (typeof e[k] === 'object' && e[k] !== null ? (e[k] as Record<string, unknown>) : null);
  if (e.t === 'run') return typeof inner('run')?.pid === 'number' && typeof inner('run')?.startedAtMs === 'number';
  if (e.t === 'start') {
    const c = inner('call');
    return typeof c?.id === 'string' && typeof c.createdAtMs === 'number' && typeof c.requestedModel === 'string' && typeof c.promptTokens === 'number';
  }
  if (e.t === 'count') return typeof e.id === 'string' && typeof e.promptTokens === 'number';
  if (e.t === 'end') {
    const r = inner('record');
    return typeof r?.id === 'string' && typeof r.createdAtMs === 'number' && typeof r.requestedModel === 'string' && typeof r.status === 'string';
  }
  return false;
}
