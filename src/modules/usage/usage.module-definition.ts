import { ConfigurableModuleBuilder, ModuleMetadata, Provider, Type } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { usageConfig } from '../../config/usage.config';
import { extensionPointDefinition } from '../../common/extension-point';
import { USAGE_SINKS, UsageSink } from '../../plugins/sdk';
import { USAGE_SINK_KIND } from '../plugins/plugin-kinds';
import { PluginRegistry } from '../plugins/plugin-registry.service';

export interface UsageModuleOptions {
  /** Nothing to configure beyond the extras today; kept as the options token for plugins to read. */
  readonly label?: string;
}

export interface UsageModuleExtras {
  /** Sink classes, resolved by Nest (so they can inject what they need). */
  sinks: Type<UsageSink>[];
  /** Modules the sink classes depend on. */
  imports?: ModuleMetadata['imports'];
}

export const { ConfigurableModuleClass: UsageModuleBase, MODULE_OPTIONS_TOKEN: USAGE_MODULE_OPTIONS } =
  new ConfigurableModuleBuilder<UsageModuleOptions>()
    .setClassMethodName('forRoot')
    .setExtras<UsageModuleExtras>({ sinks: [], imports: [] }, (definition, extras) =>
      extensionPointDefinition(definition, { classes: extras.sinks, collect: sinksProvider(extras.sinks), imports: extras.imports, global: true }),
    )
    .build();

/** One array token for every sink: the built-in classes plus plugins named in USAGE_SINK_PLUGINS. */
function sinksProvider(sinkClasses: Type<UsageSink>[]): Provider & { provide: symbol } {
  return {
    provide: USAGE_SINKS,
    inject: [usageConfig.KEY, PluginRegistry, ...sinkClasses],
    useFactory: async (config: ConfigType<typeof usageConfig>, registry: PluginRegistry, ...builtIn: UsageSink[]) => {
      for (const sink of builtIn) registry.registerBuiltIn(USAGE_SINK_KIND, sink.name);
      return [...builtIn, ...(await registry.load(USAGE_SINK_KIND, config.sinkPlugins))];
    },
  };
}
