import { isAbsolute, resolve } from 'node:path';
import type { UsageSink } from '../../plugins/sdk';

export class SinkPluginLoadError extends Error {
  constructor(spec: string, reason: string) {
    super(`Usage sink plugin "${spec}" could not be loaded: ${reason}`);
  }
}

function isUsageSink(value: unknown): value is UsageSink {
  const v = value as UsageSink | null;
  return !!v && typeof v.name === 'string' && typeof v.write === 'function';
}

/**
 * Loads sinks named in configuration. Each entry is a package name or a file path whose module
 * exports `createUsageSink()` (sync or async) returning a `UsageSink`.
 */
export async function loadSinkPlugins(specs: readonly string[]): Promise<UsageSink[]> {
  const sinks: UsageSink[] = [];
  for (const spec of specs) {
    const target = spec.startsWith('.') || isAbsolute(spec) ? resolve(spec) : spec;
    let mod: { createUsageSink?: () => unknown; default?: { createUsageSink?: () => unknown } };
    try {
      mod = await import(target);
    } catch (err) {
      throw new SinkPluginLoadError(spec, err instanceof Error ? err.message : String(err));
    }
    const factory = mod.createUsageSink ?? mod.default?.createUsageSink;
    if (typeof factory !== 'function') throw new SinkPluginLoadError(spec, 'it does not export createUsageSink()');
    const sink = await factory();
    if (!isUsageSink(sink)) throw new SinkPluginLoadError(spec, 'createUsageSink() did not return an object with name and write()');
    sinks.push(sink);
  }
  return sinks;
}
