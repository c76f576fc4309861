import { registerAs } from '@nestjs/config';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { validateEnv } from './env.validation';
import { readConfigFile, StartConfigError } from '../common/start-config-error';

export const DEFAULT_GATEWAY_FILE = 'config/gateway.json';
/** The upstream every file may route to without declaring it: OPENAI_BASE_URL / OPENAI_API_KEY / LLM_PROVIDER. */
export const DEFAULT_UPSTREAM = 'default';

export interface GatewayUpstreamConfig {
  name: string;
  baseUrl: string;
  /** Null only for the default upstream of the real OpenAI endpoint without OPENAI_API_KEY: its calls are refused. */
  apiKey: string | null;
  /** Provider id for pricing and for the usage record. */
  provider: string;
  timeoutMs: number;
  maxRetries: number;
}

export interface GatewayRoute {
  /** As written in the file: `gpt-4o` (exact), `ollama/*` (prefix, stripped before forwarding), `gpt-4*` (prefix, kept), `*`. */
  pattern: string;
  upstream: string;
}

export class GatewayFileError extends StartConfigError {
  constructor(file: string, problem: string) {
    super(`Gateway file ${file}: ${problem}`);
  }
}

/** Sent to an upstream that takes no key (a local server): the SDK needs some key. */
const NO_KEY = 'unused';
const NAME = /^[A-Za-z0-9._-]{1,64}$/;
const PATTERN = /^(\*|[^*\s]{1,128}\*?)$/;

/**
 * Routes of the OpenAI-compatible gateway. GATEWAY_FILE (default config/gateway.json; the
 * default may be missing, a named one must exist) maps model names to upstreams, first match wins:
 *
 * ```json
 * { "upstreams": { "ollama": { "base_url": "http://127.0.0.1:11434/v1", "provider": "ollama" } },
 *   "routes": [ { "model": "ollama/*", "upstream": "ollama" }, { "model": "*", "upstream": "default" } ] }
 * ```
 * Without a file every model goes to the `default` upstream (the LLM provider settings).
 */
export const gatewayConfig = registerAs('gateway', () => {
  const env = validateEnv(process.env);
  const file = resolve(env.GATEWAY_FILE ?? DEFAULT_GATEWAY_FILE);
  const defaultUpstream: GatewayUpstreamConfig = {
    name: DEFAULT_UPSTREAM,
    baseUrl: env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1',
    // A local OpenAI-compatible server usually needs no key; the real OpenAI endpoint does (as LlmClientFactory decides).
    apiKey: env.OPENAI_API_KEY ?? (env.OPENAI_BASE_URL ? NO_KEY : null),
    provider: env.LLM_PROVIDER ?? 'openai',
    timeoutMs: env.OPENAI_TIMEOUT_MS ?? 120_000,
    // The client's own SDK retries; retrying here too would multiply its attempts.
    maxRetries: 0,
  };
  if (!existsSync(file)) {
    if (env.GATEWAY_FILE) throw new GatewayFileError(file, 'does not exist (GATEWAY_FILE names it; unset it to send every model to OPENAI_BASE_URL)');
    return { file: null as string | null, upstreams: [defaultUpstream], routes: [{ pattern: '*', upstream: DEFAULT_UPSTREAM }] as GatewayRoute[] };
  }
  const text = readConfigFile(file, (problem) => new GatewayFileError(file, `${problem}; GATEWAY_FILE names it`));
  const { upstreams, routes } = parseGatewayFile(file, text, defaultUpstream, (name) => process.env[name]);
  return { file: file as string | null, upstreams, routes };
});
export type GatewayConfig = ReturnType<typeof gatewayConfig>;

/** Validates the file; every problem names the field to fix. Keys are read from the files or variables it names. */
export function parseGatewayFile(
  file: string,
  text: string,
  defaultUpstream: GatewayUpstreamConfig,
  variable: (name: string) => string | undefined,
): { upstreams: GatewayUpstreamConfig[]; routes: GatewayRoute[] } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new GatewayFileError(file, `not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(raw)) throw new GatewayFileError(file, 'expected an object {"upstreams": {...}, "routes": [...]}');
  const unknown = Object.keys(raw).filter((k) => k !== 'upstreams' && k !== 'routes');
  if (unknown.length > 0) throw new GatewayFileError(file, `unknown field ${unknown.map((k) => `"${k}"`).join(', ')} (expected "upstreams" and "routes")`);
  const upstreamsRaw = raw.upstreams ?? {};
  if (!isObject(upstreamsRaw)) throw new GatewayFileError(file, '"upstreams" must be an object of name -> {"base_url", "provider", ...}');

  const upstreams: GatewayUpstreamConfig[] = [defaultUpstream];
  for (const [name, u] of Object.entries(upstreamsRaw)) {
    const where = `upstreams.${name}`;
    if (!NAME.test(name)) throw new GatewayFileError(file, `${where}: the name must be 1-64 letters, digits or . _ -`);
    if (name === DEFAULT_UPSTREAM) throw new GatewayFileError(file, `${where}: "default" is the upstream of OPENAI_BASE_URL and cannot be redefined; choose another name`);
    if (!isObject(u)) throw new GatewayFileError(file, `${where}: expected an object with "base_url" and "provider"`);
    const allowed = ['base_url', 'provider', 'api_key_env', 'api_key_file', 'timeout_ms', 'max_retries'];
    const extra = Object.keys(u).filter((k) => !allowed.includes(k));
    if (extra.length > 0) throw new GatewayFileError(file, `${where}: unknown field "${extra[0]}" (allowed: ${allowed.join(', ')})`);
    if (typeof u.base_url !== 'string' || !/^https?:\/\/\S+$/.test(u.base_url) || !URL.canParse(u.base_url)) {
      throw new GatewayFileError(file, `${where}.base_url must be an http(s) URL such as http://127.0.0.1:11434/v1`);
    }
    if (typeof u.provider !== 'string' || !NAME.test(u.provider)) throw new GatewayFileError(file, `${where}.provider must be a provider id such as openai or ollama (used for pricing)`);
    if (u.api_key_env !== undefined && u.api_key_file !== undefined) throw new GatewayFileError(file, `${where}: give api_key_env or api_key_file, not both`);
    let apiKey = NO_KEY;
    if (u.api_key_env !== undefined) {
      if (typeof u.api_key_env !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(u.api_key_env)) throw new GatewayFileError(file, `${where}.api_key_env must be the name of an environment variable`);
      apiKey = variable(u.api_key_env)?.trim() ?? '';
      if (!apiKey) throw new GatewayFileError(file, `${where}.api_key_env: the variable ${u.api_key_env} is not set`);
    }
    if (u.api_key_file !== undefined) {
      if (typeof u.api_key_file !== 'string' || u.api_key_file === '') throw new GatewayFileError(file, `${where}.api_key_file must be a path`);
      const keyFile = resolve(dirname(file), u.api_key_file);
      apiKey = readConfigFile(keyFile, (problem) => new GatewayFileError(file, `${where}.api_key_file: ${keyFile} ${problem}`)).trim();
      if (!apiKey) throw new GatewayFileError(file, `${where}.api_key_file: ${keyFile} is empty`);
    }
    const timeoutMs = u.timeout_ms ?? defaultUpstream.timeoutMs;
    if (!Number.isInteger(timeoutMs) || (timeoutMs as number) < 1 || (timeoutMs as number) > 3_600_000) throw new GatewayFileError(file, `${where}.timeout_ms must be a whole number of milliseconds from 1 to 3600000`);
    const maxRetries = u.max_retries ?? 0;
    if (!Number.isInteger(maxRetries) || (maxRetries as number) < 0 || (maxRetries as number) > 10) throw new GatewayFileError(file, `${where}.max_retries must be a whole number from 0 to 10`);
    upstreams.push({ name, baseUrl: u.base_url, apiKey, provider: u.provider, timeoutMs: timeoutMs as number, maxRetries: maxRetries as number });
  }

  if (!Array.isArray(raw.routes) || raw.routes.length === 0) throw new GatewayFileError(file, '"routes" must be a non-empty list of {"model": "...", "upstream": "..."}');
  const names = new Set(upstreams.map((u) => u.name));
  const routes = raw.routes.map((r: unknown, i: number): GatewayRoute => {
    const where = `routes[${i}]`;
    if (!isObject(r)) throw new GatewayFileError(file, `${where}: expected {"model": "...", "upstream": "..."}`);
    const extra = Object.keys(r).filter((k) => k !== 'model' && k !== 'upstream');
    if (extra.length > 0) throw new GatewayFileError(file, `${where}: unknown field "${extra[0]}" (allowed: model, upstream)`);
    if (typeof r.model !== 'string' || !PATTERN.test(r.model)) {
      throw new GatewayFileError(file, `${where}.model must be a model name, a prefix ending in * (e.g. "ollama/*"), or "*"`);
    }
    if (typeof r.upstream !== 'string' || !names.has(r.upstream)) {
      throw new GatewayFileError(file, `${where}.upstream must name an upstream of "upstreams" or "default" (got ${JSON.stringify(r.upstream)})`);
    }
    return { pattern: r.model, upstream: r.upstream };
  });
  return { upstreams, routes };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
