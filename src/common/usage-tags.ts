/**
 * Usage tags: a few `key=value` pairs a caller attaches to its LLM calls (gateway header
 * `x-asa-tags`) and filters the usage API by (`?tags=`). Bounded so they stay cheap to store and
 * to match, and never used as metric labels (their values are unbounded across calls).
 *
 * Stored as canonical JSON (keys sorted, no spaces): the allowed characters need no JSON escaping
 * and contain no LIKE wildcard but `_`, so one pair is matched with a plain, escaped LIKE that
 * runs the same on SQLite and PostgreSQL.
 */
export const MAX_TAGS = 8;
export const MAX_TAG_KEY_LENGTH = 32;
export const MAX_TAG_VALUE_LENGTH = 64;

const KEY = new RegExp(`^[A-Za-z][A-Za-z0-9_.-]{0,${MAX_TAG_KEY_LENGTH - 1}}$`);
const VALUE = new RegExp(`^[A-Za-z0-9_.:/@+-]{1,${MAX_TAG_VALUE_LENGTH}}$`);

export const TAGS_RULES =
  `at most ${MAX_TAGS} comma-separated key=value pairs; a key is 1-${MAX_TAG_KEY_LENGTH} letters, digits or _ . - starting with a letter, ` +
  `a value 1-${MAX_TAG_VALUE_LENGTH} letters, digits or _ . : / @ + -; each key once`;

export type UsageTags = Readonly<Record<string, string>>;

/** `team=search, env=prod` -> `{ env: 'prod', team: 'search' }`; throws an Error naming the bad pair. */
export function parseUsageTags(text: string): UsageTags {
  const tags: Record<string, string> = {};
  const pairs = text.split(',').map((p) => p.trim());
  if (pairs.length > MAX_TAGS) throw new Error(`${pairs.length} pairs given; ${TAGS_RULES}`);
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq).trim();
    const value = eq < 0 ? '' : pair.slice(eq + 1).trim();
    const shown = JSON.stringify(pair.slice(0, 120));
    if (eq < 0 || !KEY.test(key) || !VALUE.test(value)) throw new Error(`${shown} is not a valid key=value pair; ${TAGS_RULES}`);
    if (Object.hasOwn(tags, key)) throw new Error(`key "${key}" is given twice; ${TAGS_RULES}`);
    tags[key] = value;
  }
  return sortedTags(tags);
}

function sortedTags(tags: Record<string, string>): UsageTags {
  const out: Record<string, string> = {};
  for (const key of Object.keys(tags).sort()) out[key] = tags[key];
  return out;
}

/** The stored form: JSON with sorted keys, or null for no tags. */
export function tagsToColumn(tags: UsageTags | null | undefined): string | null {
  if (!tags || Object.keys(tags).length === 0) return null;
  return JSON.stringify(sortedTags({ ...tags }));
}

export function tagsFromColumn(text: string | null | undefined): UsageTags | null {
  if (text === null || text === undefined || text === '') return null;
  try {
    const parsed = JSON.parse(text) as unknown;
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as UsageTags) : null;
  } catch {
    return null;
  }
}

/**
 * LIKE pattern (with `\` as the escape character) matching stored tags that hold this pair.
 * `"key":"value"` can only match a key followed by its own value: a value is followed by `,` or `}`, never `:`.
 */
export function tagLikePattern(key: string, value: string): string {
  const escape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);
  return `%${escape(JSON.stringify(key))}:${escape(JSON.stringify(value))}%`;
}
