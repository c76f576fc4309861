import { Inject, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { loadPlugin, PluginLoadError, PluginSource, PluginStartError } from '../../common/plugin-loader';
import { NO_PLUGIN_SETTING, pluginsConfig } from '../../config/plugins.config';
import { SDK_API_VERSION } from '../../plugins/sdk';
import type { KindDefinition, PluginKindName } from './plugin-kinds';

/**
 * `active`: in use; `failing`: in use, but its latest write / send / delivery / run failed;
 * `skipped`: an optional plugin that could not be loaded; `disabled`: a built-in whose settings are absent.
 */
export type PluginState = 'active' | 'failing' | 'skipped' | 'disabled';

export interface PluginActivity {
  /** Items waiting for this plugin (a sink's queue); null for kinds without a queue. */
  queueDepth: number | null;
  /** Sinks: records written; notifiers: notifications delivered; destinations: files delivered; agents: tasks run. */
  written: number;
  /** Failed writes, attempts, deliveries or runs (each retry that fails counts once). */
  errors: number;
  lastError: { message: string; atMs: number } | null;
  /** True while the latest outcome is a failure. */
  failing: boolean;
}

/** One plugin as the registry lists it (the accessor for anything that reports on plugins). */
export interface PluginInfo {
  kind: PluginKindName;
  /** Null for a skipped plugin, whose factory never returned a name. */
  name: string | null;
  source: PluginSource;
  /** The path or package name it was loaded from; null for built-ins. */
  module: string | null;
  /** The plugin API version it declares (built-ins: this service's); null when it declares none. */
  apiVersion: string | null;
  state: PluginState;
  /** Why it is skipped or disabled. */
  detail: string | null;
  activity: PluginActivity;
}

/**
 * What the code that calls a plugin reports back: each outcome, or (sinks) a live view of the
 * plugin's queue. Every plugin, built in or loaded, has one.
 */
export class PluginHandle {
  private written = 0;
  private errors = 0;
  private lastError: PluginActivity['lastError'] = null;
  private failing = false;
  private source: (() => PluginActivity) | null = null;

  succeeded(count = 1): void {
    this.written += count;
    this.failing = false;
  }

  failed(message: string): void {
    this.errors++;
    this.lastError = { message: message.slice(0, 500), atMs: Date.now() };
    this.failing = true;
  }

  /** The activity is kept elsewhere (a sink's queue); read it from there. */
  track(source: () => PluginActivity): void {
    this.source = source;
  }

  activity(): PluginActivity {
    if (this.source) return this.source();
    return { queueDepth: null, written: this.written, errors: this.errors, lastError: this.lastError, failing: this.failing };
  }
}

type RegisteredInfo = Omit<PluginInfo, 'kind' | 'activity' | 'state'> & { state: Exclude<PluginState, 'failing'> };

interface Entry {
  readonly info: RegisteredInfo & { kind: PluginKindName };
  readonly handle: PluginHandle;
}

/**
 * The one registry of every sink, notifier, export destination and task agent: built-ins are
 * registered here exactly as loaded plugins are. Loading goes through `load`, which applies the
 * per-plugin settings of config/plugins.json and stops the start on a plugin that cannot be
 * loaded, unless it is optional.
 */
@Injectable()
export class PluginRegistry implements OnApplicationBootstrap {
  private readonly logger = new Logger(PluginRegistry.name);
  private readonly entries: Entry[] = [];
  private readonly specsSeen = new Set<string>();

  constructor(@Inject(pluginsConfig.KEY) private readonly config: ConfigType<typeof pluginsConfig>) {}

  /** Registers a built-in (`disabled` when its settings are absent: listed, never called). */
  registerBuiltIn(kind: KindDefinition<unknown>, name: string, opts: { disabled?: string } = {}): PluginHandle {
    return this.add(kind, {
      name,
      source: 'builtin',
      module: null,
      apiVersion: SDK_API_VERSION,
      state: opts.disabled ? 'disabled' : 'active',
      detail: opts.disabled ?? null,
    });
  }

  /**
   * Loads the plugins named in the kind's variable, in order, and registers them. A plugin that
   * cannot be found, does not implement the kind's interface, declares an incompatible API version
   * or does not load within the time limit throws a one-line PluginLoadError naming it; marked
   * `optional` in the plugins file, it is skipped with a warning instead.
   */
  async load<T extends { name: string }>(kind: KindDefinition<T>, specs: readonly string[]): Promise<T[]> {
    const loaded: T[] = [];
    for (const spec of specs) {
      this.specsSeen.add(spec);
      const setting = this.config.settings.get(spec) ?? NO_PLUGIN_SETTING;
      const result = await loadPlugin<T>(spec, kind, { options: setting.options, timeoutMs: this.config.loadTimeoutMs });
      if (!result.ok) {
        const error = new PluginLoadError(kind.label, spec, result.reason);
        if (!setting.optional) throw error;
        this.logger.warn(`${error.message}; it is optional, so the service starts without it`);
        this.add(kind, { name: null, source: result.source, module: spec, apiVersion: result.apiVersion, state: 'skipped', detail: result.reason });
        continue;
      }
      if (result.apiVersion === null) this.logger.warn(`${kind.label} plugin "${spec}" declares no apiVersion; assuming it was written for ${SDK_API_VERSION}`);
      this.add(kind, { name: result.value.name, source: result.source, module: spec, apiVersion: result.apiVersion, state: 'active', detail: null });
      loaded.push(result.value);
    }
    return loaded;
  }

  /** The handle of a registered plugin that is in use (not skipped or disabled). */
  handle(kind: PluginKindName, name: string): PluginHandle | undefined {
    return this.entries.find((e) => e.info.kind === kind && e.info.name === name && e.info.state === 'active')?.handle;
  }

  /** Every registered plugin, in registration order, with its current activity. */
  list(): PluginInfo[] {
    return this.entries.map(({ info, handle }) => {
      const activity = handle.activity();
      return { ...info, state: info.state === 'active' && activity.failing ? 'failing' : info.state, activity };
    });
  }

  onApplicationBootstrap(): void {
    for (const spec of this.config.settings.keys()) {
      if (!this.specsSeen.has(spec)) {
        this.logger.warn(`Plugins file ${this.config.file} has settings for "${spec}", which no *_PLUGINS variable names; they are unused`);
      }
    }
  }

  private add(kind: KindDefinition<unknown>, info: RegisteredInfo): PluginHandle {
    if (info.state === 'active' && this.handle(kind.name, info.name as string)) {
      throw new PluginStartError(`Two ${kind.label.toLowerCase()}s are named "${info.name}"; ${kind.label.toLowerCase()} names must be unique`);
    }
    const handle = new PluginHandle();
    this.entries.push({ info: { kind: kind.name, ...info }, handle });
    return handle;
  }
}
