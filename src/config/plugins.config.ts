import { registerAs } from '@nestjs/config';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { PluginStartError } from '../common/plugin-loader';
import { readConfigFile } from '../common/start-config-error';
import { validateEnv } from './env.validation';

export const DEFAULT_PLUGINS_FILE = 'config/plugins.json';

/** What config/plugins.json says about one plugin (keyed by the entry of its `*_PLUGINS` variable). */
export interface PluginSetting {
  /** A plugin that cannot be loaded is skipped with a warning instead of stopping the start. */
  readonly optional: boolean;
  /** Handed to the plugin's factory (`createUsageSink(options)`, ...). */
  readonly options: Readonly<Record<string, unknown>>;
}

export const NO_PLUGIN_SETTING: PluginSetting = Object.freeze({ optional: false, options: Object.freeze({}) });

export class PluginsFileError extends PluginStartError {
  constructor(file: string, problem: string) {
    super(`Plugins file ${file}: ${problem}`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Reads `{ "plugins": { "<path or package>": { "optional": true, "options": { ... } } } }`. The
 * default file may be missing (no options); a named one must exist. Every problem names its field.
 */
export function readPluginsFile(file: string, required: boolean): ReadonlyMap<string, PluginSetting> {
  if (!existsSync(file)) {
    if (required) throw new PluginsFileError(file, 'the file does not exist (PLUGINS_FILE names it)');
    return new Map();
  }
  const text = readConfigFile(file, (problem) => new PluginsFileError(file, problem));
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new PluginsFileError(file, `not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(parsed)) throw new PluginsFileError(file, 'must hold a JSON object: { "plugins": { ... } }');
  for (const key of Object.keys(parsed)) {
    if (key !== 'plugins') throw new PluginsFileError(file, `unknown field "${key}" (the file holds only "plugins")`);
  }
  const plugins = parsed.plugins ?? {};
  if (!isObject(plugins)) throw new PluginsFileError(file, '"plugins" must be an object keyed by the path or package name used in a *_PLUGINS variable');
  const settings = new Map<string, PluginSetting>();
  for (const [spec, entry] of Object.entries(plugins)) {
    const field = `plugins[${JSON.stringify(spec)}]`;
    if (!isObject(entry)) throw new PluginsFileError(file, `${field} must be an object with "optional" and/or "options"`);
    for (const key of Object.keys(entry)) {
      if (key !== 'optional' && key !== 'options') throw new PluginsFileError(file, `${field}: unknown field "${key}" (allowed: optional, options)`);
    }
    if (entry.optional !== undefined && typeof entry.optional !== 'boolean') throw new PluginsFileError(file, `${field}.optional must be true or false`);
    if (entry.options !== undefined && !isObject(entry.options)) throw new PluginsFileError(file, `${field}.options must be an object`);
    settings.set(spec, { optional: entry.optional ?? false, options: Object.freeze({ ...(entry.options ?? {}) }) });
  }
  return settings;
}

export const pluginsConfig = registerAs('plugins', () => {
  const env = validateEnv(process.env);
  const file = resolve(env.PLUGINS_FILE || DEFAULT_PLUGINS_FILE);
  return {
    file,
    /** Per-plugin settings, by the entry of the `*_PLUGINS` variable that names the plugin. */
    settings: readPluginsFile(file, Boolean(env.PLUGINS_FILE)),
    /** A plugin whose module or factory has not settled after this long at start is a load failure. */
    loadTimeoutMs: env.PLUGIN_LOAD_TIMEOUT_MS ?? 30_000,
  };
});
export type PluginsConfig = ReturnType<typeof pluginsConfig>;
