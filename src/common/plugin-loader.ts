import { isAbsolute, resolve } from 'node:path';
import { major, minor, valid } from 'semver';
import { SDK_API_VERSION } from '../plugins/sdk/version';
import { StartConfigError } from './start-config-error';

/** A plugin configuration problem that stops the start: its one-line message says all (no stack trace). */
export class PluginStartError extends StartConfigError {}

/** A plugin named in configuration that could not be loaded; the message names the plugin and why, on one line. */
export class PluginLoadError extends PluginStartError {
  constructor(kind: string, spec: string, reason: string) {
    super(`${kind} plugin "${spec}" could not be loaded: ${reason}`);
  }
}

export interface PluginKind<T> {
  /** How messages name the extension point, e.g. "Usage sink". */
  label: string;
  /** The variable that lists this kind's plugins, e.g. USAGE_SINK_PLUGINS. */
  variable: string;
  /** The function each plugin module exports (sync or async) that returns one implementation. */
  factory: string;
  /** Null when `value` has the shape of a T, else what is wrong with it (completes "<factory>() ..."). */
  problem(value: unknown): string | null;
}

/** Where a plugin came from: built into the service, a file path, or an installed package. */
export type PluginSource = 'builtin' | 'path' | 'package';

export const pluginSource = (spec: string): PluginSource => (spec.startsWith('.') || isAbsolute(spec) ? 'path' : 'package');

export type PluginLoadResult<T> =
  | { ok: true; spec: string; source: PluginSource; apiVersion: string | null; value: T }
  | { ok: false; spec: string; source: PluginSource; apiVersion: string | null; reason: string };

/** Messages land on one log line: the first line of an error (Node's "Require stack" and the like dropped). */
export function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return (message.split('\n')[0] ?? '').trim() || 'failed without a message';
}

class PluginTimeout extends Error {}

/** Rejects when `work` has not settled after `ms` (it cannot be cancelled, only stopped waiting for). */
export function withTimeout<T>(work: () => T | Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    // Not unref'd: while a plugin's factory hangs at start, this timer is all that keeps the
    // process alive, and it must live to report the plugin rather than exit quietly with 0.
    timer = setTimeout(() => reject(new PluginTimeout(message)), ms);
  });
  // Promise.resolve().then: a synchronous throw becomes a rejection like an async one.
  return Promise.race([Promise.resolve().then(work), timeout]).finally(() => clearTimeout(timer));
}

/**
 * Null when a plugin written against `declared` runs on this host (`host`, semver): the same major,
 * and a minor no newer than the host's (a newer minor may call what this host lacks). Else why not.
 */
export function apiVersionProblem(declared: unknown, host: string = SDK_API_VERSION): string | null {
  if (typeof declared !== 'string' || valid(declared) === null) {
    return `it declares apiVersion ${JSON.stringify(declared)}, which is not a semver version such as "${host}"`;
  }
  if (major(declared) !== major(host) || minor(declared) > minor(host)) {
    return `it needs plugin API ${declared}; this service provides ${host} (the same major version and a minor version no newer than ${major(host)}.${minor(host)} are needed)`;
  }
  return null;
}

/**
 * Loads one plugin: a package name or a file path (relative to the working directory) whose module
 * exports the kind's factory, directly or on its default export, and optionally `apiVersion`. The
 * factory is called with the plugin's options; import and factory together are bounded by
 * `timeoutMs`. Never throws: a failure is returned with its reason, for the caller to stop or skip.
 */
export async function loadPlugin<T>(
  spec: string,
  kind: PluginKind<T>,
  opts: { options: Readonly<Record<string, unknown>>; timeoutMs: number },
): Promise<PluginLoadResult<T>> {
  const source = pluginSource(spec);
  let apiVersion: string | null = null;
  const fail = (reason: string): PluginLoadResult<T> => ({ ok: false, spec, source, apiVersion, reason });
  const target = source === 'path' ? resolve(spec) : spec;
  let mod: Record<string, unknown> & { default?: Record<string, unknown> };
  try {
    mod = await withTimeout(() => import(target), opts.timeoutMs, `its module did not finish loading within ${opts.timeoutMs} ms`);
  } catch (err) {
    return fail(notFound(err, target, source) ?? oneLine(err));
  }
  const declared = mod.apiVersion ?? mod.default?.apiVersion;
  if (declared !== undefined) {
    const problem = apiVersionProblem(declared);
    if (problem !== null) return fail(problem);
    apiVersion = declared as string;
  }
  const factory = mod[kind.factory] ?? mod.default?.[kind.factory];
  if (typeof factory !== 'function') return fail(`it does not export ${kind.factory}()`);
  let value: unknown;
  try {
    value = await withTimeout(
      () => (factory as (options: unknown) => unknown)(opts.options),
      opts.timeoutMs,
      `${kind.factory}() did not return within ${opts.timeoutMs} ms`,
    );
  } catch (err) {
    return fail(err instanceof PluginTimeout ? err.message : `${kind.factory}() threw: ${oneLine(err)}`);
  }
  const problem = kind.problem(value);
  if (problem !== null) return fail(`${kind.factory}() ${problem}`);
  return { ok: true, spec, source, apiVersion, value: value as T };
}

/** The plugin's own module is missing (not one it requires): say where it was looked for. */
function notFound(err: unknown, target: string, source: PluginSource): string | null {
  const e = err as NodeJS.ErrnoException | null;
  if (e?.code !== 'MODULE_NOT_FOUND' && e?.code !== 'ERR_MODULE_NOT_FOUND') return null;
  if (!oneLine(e).includes(`'${target}'`)) return null;
  return source === 'path' ? `there is no module at ${target}` : `no installed package "${target}" (install it beside the service, or give a path)`;
}

/** Names label logs, metrics and stored rows: 1-64 characters of a-z, 0-9, _ and -. */
export const PLUGIN_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/**
 * The shape check shared by every kind: an object with a valid `name` and the kind's methods.
 * Returns what is wrong, completing "<factory>() ...".
 */
export function shapeProblem(value: unknown, methods: readonly string[]): string | null {
  const v = value as Record<string, unknown> | null;
  const wanted = `an object with name and ${methods.map((m) => `${m}()`).join(', ')}`;
  if (!v || typeof v !== 'object') return `did not return ${wanted}`;
  if (typeof v.name !== 'string' || v.name.length === 0) return `did not return ${wanted} (name is missing)`;
  const missing = methods.filter((m) => typeof v[m] !== 'function');
  if (missing.length > 0) return `did not return ${wanted} ("${v.name}" has no ${missing.map((m) => `${m}()`).join(', ')})`;
  return PLUGIN_NAME_PATTERN.test(v.name) ? null : `returned the name "${v.name}"; a name must be 1-64 characters of a-z, 0-9, _ and -`;
}
