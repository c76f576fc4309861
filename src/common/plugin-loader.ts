import { isAbsolute, resolve } from 'node:path';

/** A plugin named in configuration that could not be loaded; the message names the plugin and why. */
export class PluginLoadError extends Error {
  constructor(kind: string, spec: string, reason: string) {
    super(`${kind} plugin "${spec}" could not be loaded: ${reason}`);
    this.name = new.target.name;
  }
}

export interface PluginKind<T> {
  /** How errors name the extension point, e.g. "Usage sink". */
  kind: string;
  /** The function each plugin module exports (sync or async) that returns one implementation. */
  factory: string;
  /** Null when `value` has the shape of a T, else what is wrong with it (completes "<factory>() ..."). */
  problem(value: unknown): string | null;
  /** Builds the error class callers of one extension point expect (default PluginLoadError). */
  error?: (spec: string, reason: string) => Error;
}

/**
 * The one loader of every extension point's plugins (sinks, notifiers, export destinations). Each
 * entry is a package name or a file path (relative to the working directory) whose module exports
 * the named factory, directly or on its default export.
 */
export async function loadPlugins<T>(specs: readonly string[], plugin: PluginKind<T>): Promise<T[]> {
  const fail = (spec: string, reason: string) => (plugin.error ? plugin.error(spec, reason) : new PluginLoadError(plugin.kind, spec, reason));
  const loaded: T[] = [];
  for (const spec of specs) {
    const target = spec.startsWith('.') || isAbsolute(spec) ? resolve(spec) : spec;
    let mod: Record<string, unknown> & { default?: Record<string, unknown> };
    try {
      mod = await import(target);
    } catch (err) {
      throw fail(spec, err instanceof Error ? err.message : String(err));
    }
    const factory = mod[plugin.factory] ?? mod.default?.[plugin.factory];
    if (typeof factory !== 'function') throw fail(spec, `it does not export ${plugin.factory}()`);
    let value: unknown;
    try {
      value = await (factory as () => unknown)();
    } catch (err) {
      throw fail(spec, `${plugin.factory}() threw: ${err instanceof Error ? err.message : String(err)}`);
    }
    const problem = plugin.problem(value);
    if (problem !== null) throw fail(spec, `${plugin.factory}() ${problem}`);
    loaded.push(value as T);
  }
  return loaded;
}

/** Names label logs, metrics and stored rows: 1-64 characters of a-z, 0-9, _ and -. */
export const PLUGIN_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
