import { isAbsolute, resolve } from 'node:path';
import type { AlertNotifier } from '../../../plugins/sdk';

export class NotifierPluginLoadError extends Error {
  constructor(spec: string, reason: string) {
    super(`Alert notifier plugin "${spec}" could not be loaded: ${reason}`);
  }
}

function isAlertNotifier(value: unknown): value is AlertNotifier {
  const v = value as AlertNotifier | null;
  return !!v && typeof v.name === 'string' && v.name.length > 0 && typeof v.send === 'function';
}

/**
 * Loads notifiers named in ALERT_NOTIFIER_PLUGINS. Each entry is a package name or a file path whose
 * module exports `createAlertNotifier()` (sync or async) returning an `AlertNotifier`.
 */
export async function loadNotifierPlugins(specs: readonly string[]): Promise<AlertNotifier[]> {
  const notifiers: AlertNotifier[] = [];
  for (const spec of specs) {
    const target = spec.startsWith('.') || isAbsolute(spec) ? resolve(spec) : spec;
    let mod: { createAlertNotifier?: () => unknown; default?: { createAlertNotifier?: () => unknown } };
    try {
      mod = await import(target);
    } catch (err) {
      throw new NotifierPluginLoadError(spec, err instanceof Error ? err.message : String(err));
    }
    const factory = mod.createAlertNotifier ?? mod.default?.createAlertNotifier;
    if (typeof factory !== 'function') throw new NotifierPluginLoadError(spec, 'it does not export createAlertNotifier()');
    let notifier: unknown;
    try {
      notifier = await factory();
    } catch (err) {
      throw new NotifierPluginLoadError(spec, `createAlertNotifier() threw: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!isAlertNotifier(notifier)) throw new NotifierPluginLoadError(spec, 'createAlertNotifier() did not return an object with name and send()');
    if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(notifier.name)) {
      throw new NotifierPluginLoadError(spec, `its name "${notifier.name}" must be 1-64 characters of a-z, 0-9, _ and -`);
    }
    notifiers.push(notifier);
  }
  return notifiers;
}
