import { dirname } from 'node:path';

/**
 * Variables a test command may inherit from the service's environment: what tools need to find
 * binaries and format text, nothing that could carry a credential.
 */
export const SANDBOX_ENV_ALLOWLIST: readonly string[] = [
  'PATH',
  'LANG',
  'LANGUAGE',
  'LC_ALL',
  'LC_CTYPE',
  'LC_MESSAGES',
  'TZ',
  'TERM',
  'SHELL',
  'USER',
  'LOGNAME',
];

/**
 * Names that are never passed to a test command, even when a deployer lists them in
 * TASK_TEST_ENV_PASSTHROUGH: API keys, tokens, passwords, database and webhook URLs,
 * OpenTelemetry headers, cloud credentials, and the service's own OpenAI settings.
 */
const SECRET_NAME = /(KEY|SECRET|TOKEN|PASSWORD|PASSWD|PASS|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE|WEBHOOK|DATABASE|DSN|_URL$|^OTEL_|^OPENAI_|^AWS_|^GOOGLE_|^AZURE_|^SMTP|^SLACK|^NPM_CONFIG_|^GIT_|^SSH_)/i;

export function isSecretEnvName(name: string): boolean {
  return SECRET_NAME.test(name);
}

/**
 * Picks the variables a test command may see from `source` (the service's environment, read in
 * src/config): the fixed allowlist plus `extraNames`, minus anything that looks like a secret.
 */
export function pickPassthroughEnv(
  source: Record<string, string | undefined>,
  extraNames: readonly string[] = [],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of [...SANDBOX_ENV_ALLOWLIST, ...extraNames]) {
    if (isSecretEnvName(name)) continue;
    const value = source[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}

export interface SandboxDirs {
  /** HOME of the test command: a scratch folder inside the task's workspace. */
  readonly home: string;
  /** TMPDIR of the test command. */
  readonly tmp: string;
}

/**
 * The complete environment of a test command. Built from scratch (never a copy of process.env),
 * so a secret added to the service's environment later cannot leak by default.
 */
export function buildSandboxEnv(passthrough: Record<string, string>, dirs: SandboxDirs): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(passthrough)) {
    if (!isSecretEnvName(name)) env[name] = value;
  }
  // The node running the service is the one a JavaScript test suite expects to find first.
  const nodeBin = dirname(process.execPath);
  const path = env.PATH || '/usr/local/bin:/usr/bin:/bin';
  env.PATH = path.split(':').includes(nodeBin) ? path : `${nodeBin}:${path}`;
  env.HOME = dirs.home;
  env.TMPDIR = dirs.tmp;
  env.TMP = dirs.tmp;
  env.TEMP = dirs.tmp;
  env.CI = 'true';
  env.NO_COLOR = '1';
  env.FORCE_COLOR = '0';
  env.GIT_TERMINAL_PROMPT = '0';
  if (!env.LANG) env.LANG = 'C.UTF-8';
  return env;
}
