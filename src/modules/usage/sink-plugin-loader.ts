import { loadPlugins } from '../../common/plugin-loader';
import type { UsageSink } from '../../plugins/sdk';

export class SinkPluginLoadError extends Error {
  constructor(spec: string, reason: string) {
    super(`Usage sink plugin "${spec}" could not be loaded: ${reason}`);
  }
}

/**
 * Loads sinks named in USAGE_SINK_PLUGINS. Each entry is a package name or a file path whose module
 * exports `createUsageSink()` (sync or async) returning a `UsageSink`.
 */
export function loadSinkPlugins(specs: readonly string[]): Promise<UsageSink[]> {
  return loadPlugins<UsageSink>(specs, {
    kind: 'Usage sink',
    factory: 'createUsageSink',
    problem: (v) => {
      const s = v as UsageSink | null;
      return s && typeof s.name === 'string' && typeof s.write === 'function' ? null : 'did not return an object with name and write()';
    },
    error: (spec, reason) => new SinkPluginLoadError(spec, reason),
  });
}
