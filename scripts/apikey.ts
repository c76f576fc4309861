/**
 * Creates an API key: `npm run apikey -- --name ci --scope admin` or
 * `npm run apikey -- --name alice --scope user --user user-123`. Prints the key once (it is not
 * stored anywhere, only its SHA-256) and appends the hashed entry to API_KEYS_FILE.
 * Restart the service to load the new key.
 */
import { chmodSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { authConfig } from '../src/config/auth.config';
import { loadDotEnv } from '../src/config/load-env';
import { ApiKeyEntry, generateApiKey, hashApiKey, readApiKeyFile, USER_ID_PATTERN } from '../src/modules/auth/api-key-file';

const USAGE = 'usage: npm run apikey -- --name <name> --scope admin|user [--user <user_id>] [--file <path>]';

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

function main(): void {
  loadDotEnv();
  let values: { name?: string; scope?: string; user?: string; file?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        name: { type: 'string' },
        scope: { type: 'string' },
        user: { type: 'string' },
        file: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const file = values.file ?? authConfig().apiKeysFile;
  if (!values.name) fail('--name is required');
  if (values.scope !== 'admin' && values.scope !== 'user') fail('--scope must be admin or user');
  if (values.scope === 'user' && !values.user) fail('--scope user needs --user <user_id>');
  if (values.scope === 'admin' && values.user) fail('--user is only for --scope user');
  if (values.user && !USER_ID_PATTERN.test(values.user)) fail('--user must be 1-100 characters of letters, digits and . _ : @ -');

  let existing;
  try {
    existing = readApiKeyFile(file);
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
  if (existing.keys.some((k) => k.name === values.name)) fail(`a key named "${values.name}" already exists in ${file}`);

  const key = generateApiKey();
  const entry: ApiKeyEntry = {
    name: values.name,
    scope: values.scope,
    ...(values.scope === 'user' ? { user_id: values.user } : {}),
    sha256: hashApiKey(key),
    created_at: new Date().toISOString(),
  };
  const next = { keys: [...existing.keys, entry] };
  // Validate what we are about to write with the same reader the service uses at boot.
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(next, null, 2)}\n`, { mode: 0o600 });
  try {
    readApiKeyFile(tmp);
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
  renameSync(tmp, file);
  chmodSync(file, 0o600);

  process.stderr.write(
    `Added key "${entry.name}" (scope ${entry.scope}${entry.user_id ? `, user ${entry.user_id}` : ''}) to ${file}.\n` +
      'This is the only time the key is shown; store it now. Restart the service to load it.\n',
  );
  process.stdout.write(`${key}\n`);
}

main();
