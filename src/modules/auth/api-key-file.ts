import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readConfigFile, StartConfigError } from '../../common/start-config-error';

/** One entry of the API keys file. Only the SHA-256 of a key is ever stored. */
export interface ApiKeyEntry {
  name: string;
  scope: 'admin' | 'user';
  /** Required for `user` scope: the only user whose data the key may read. */
  user_id?: string | null;
  /** Lowercase hex SHA-256 of the key. */
  sha256: string;
  /** ISO time the entry was created (informational). */
  created_at?: string;
}

export interface ApiKeyFile {
  keys: ApiKeyEntry[];
}

/** Prefix of generated keys, so a leaked key is recognisable (secret scanners, logs). */
export const API_KEY_PREFIX = 'asa_';

/** Same charset and length as the `user_id` path parameter of the usage API. */
export const USER_ID_PATTERN = /^[A-Za-z0-9._:@-]{1,100}$/;
const NAME_PATTERN = /^[A-Za-z0-9._:@-]{1,64}$/;
const SHA256_PATTERN = /^[0-9a-f]{64}$/;

export class ApiKeyFileError extends StartConfigError {
  constructor(file: string, problem: string) {
    super(`API keys file ${file}: ${problem}`);
  }
}

/** 32 random bytes, base64url: 256 bits of entropy, so a plain SHA-256 is a sufficient hash. */
export function generateApiKey(): string {
  return API_KEY_PREFIX + randomBytes(32).toString('base64url');
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * Reads and validates the keys file. A missing file means "no keys" unless `required`; anything
 * malformed throws an error naming the file and the entry, so a typo never silently opens or
 * closes the API.
 */
export function readApiKeyFile(file: string, { required = false } = {}): ApiKeyFile {
  if (!existsSync(file)) {
    if (required) throw new ApiKeyFileError(file, 'does not exist (API_KEYS_FILE names it; create keys with `npm run apikey`, or unset API_KEYS_FILE to run without keys)');
    return { keys: [] };
  }
  const text = readConfigFile(file, (problem) => new ApiKeyFileError(file, problem));
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ApiKeyFileError(file, `not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as ApiKeyFile).keys)) {
    throw new ApiKeyFileError(file, 'expected an object {"keys": [...]}');
  }
  const keys = (parsed as ApiKeyFile).keys;
  const names = new Set<string>();
  const hashes = new Set<string>();
  keys.forEach((entry, i) => {
    const where = `entry ${i}${typeof entry?.name === 'string' ? ` ("${entry.name}")` : ''}`;
    const fail = (problem: string) => {
      throw new ApiKeyFileError(file, `${where}: ${problem}`);
    };
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) fail('must be an object');
    if (typeof entry.name !== 'string' || !NAME_PATTERN.test(entry.name)) {
      fail('name must be 1-64 characters of letters, digits and . _ : @ -');
    }
    if (names.has(entry.name)) fail(`name "${entry.name}" is used twice`);
    names.add(entry.name);
    if (entry.scope !== 'admin' && entry.scope !== 'user') fail('scope must be "admin" or "user"');
    if (entry.scope === 'user') {
      if (typeof entry.user_id !== 'string' || !USER_ID_PATTERN.test(entry.user_id)) {
        fail('user_id is required for scope "user" (1-100 characters of letters, digits and . _ : @ -)');
      }
    } else if (entry.user_id !== undefined && entry.user_id !== null) {
      fail('user_id is only allowed with scope "user"');
    }
    if (typeof entry.sha256 !== 'string' || !SHA256_PATTERN.test(entry.sha256)) {
      fail('sha256 must be the 64 lowercase hex digits of the key\'s SHA-256 (create entries with `npm run apikey`)');
    }
    if (hashes.has(entry.sha256)) fail('the same key (sha256) appears twice');
    hashes.add(entry.sha256);
    const known = new Set(['name', 'scope', 'user_id', 'sha256', 'created_at']);
    const unknown = Object.keys(entry).filter((k) => !known.has(k));
    if (unknown.length > 0) fail(`unknown field(s) ${unknown.join(', ')}`);
  });
  return { keys };
}
