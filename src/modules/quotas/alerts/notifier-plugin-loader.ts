import { loadPlugins, PLUGIN_NAME_PATTERN } from '../../../common/plugin-loader';
import type { AlertNotifier } from '../../../plugins/sdk';

export class NotifierPluginLoadError extends Error {
  constructor(spec: string, reason: string) {
    super(`Alert notifier plugin "${spec}" could not be loaded: ${reason}`);
  }
}

/**
 * Loads notifiers named in ALERT_NOTIFIER_PLUGINS. Each entry is a package name or a file path whose
 * module exports `createAlertNotifier()` (sync or async) returning an `AlertNotifier`.
 */
export function loadNotifierPlugins(specs: readonly string[]): Promise<AlertNotifier[]> {
  return loadPlugins<AlertNotifier>(specs, {
    kind: 'Alert notifier',
    factory: 'createAlertNotifier',
    problem: (v) => {
      const n = v as AlertNotifier | null;
      if (!n || typeof n.name !== 'string' || n.name.length === 0 || typeof n.send !== 'function') return 'did not return an object with name and send()';
      return PLUGIN_NAME_PATTERN.test(n.name) ? null : `returned the name "${n.name}"; a name must be 1-64 characters of a-z, 0-9, _ and -`;
    },
    error: (spec, reason) => new NotifierPluginLoadError(spec, reason),
  });
}
