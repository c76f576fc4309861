/**
 * Version of this plugin API (semver). A plugin module may export `apiVersion`, the version it was
 * written against; the service loads it when the major versions are equal and the plugin's minor
 * is not newer than the service's (a 1.2 plugin may use what 1.1 lacks). Minor versions only add;
 * anything that breaks a plugin bumps the major.
 */
export const SDK_API_VERSION = '1.1.0';

/** Per-plugin options from `config/plugins.json` (`{}` when the file has none for the plugin). */
export type PluginOptions = Readonly<Record<string, unknown>>;

/**
 * What a plugin module exports: its `apiVersion` and the factory of its kind, called once at start
 * with the plugin's options (it may be async). The factory may also sit on the default export.
 */
export interface PluginModuleBase {
  readonly apiVersion?: string;
}
