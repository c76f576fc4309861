import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashApiKey } from '../../src/modules/auth/api-key-file';

export interface TestKey {
  name: string;
  /** The plaintext key the test sends; only its hash goes into the file. */
  key: string;
  /** Set for a user-scoped key; admin scope when absent. */
  userId?: string;
}

/** Writes an API keys file (hashed, as `npm run apikey` does) into `dir`; returns its path. */
export function writeApiKeysFile(dir: string, keys: TestKey[]): string {
  const file = join(dir, 'api-keys.json');
  const entries = keys.map(({ name, key, userId }) =>
    userId === undefined
      ? { name, scope: 'admin', sha256: hashApiKey(key) }
      : { name, scope: 'user', user_id: userId, sha256: hashApiKey(key) },
  );
  writeFileSync(file, JSON.stringify({ keys: entries }));
  return file;
}

export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
