import { ConfigurableModuleBuilder, ModuleMetadata, Provider, Type } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { extensionPointDefinition } from '../../common/extension-point';
import { billingConfig } from '../../config/billing.config';
import { EXPORT_DESTINATIONS, ExportDestination } from '../../plugins/sdk';
import { EXPORT_DESTINATION_KIND } from '../plugins/plugin-kinds';
import { PluginRegistry } from '../plugins/plugin-registry.service';

export interface BillingModuleOptions {
  /** Nothing to configure beyond the extras today; kept as the options token for plugins to read. */
  readonly label?: string;
}

export interface BillingModuleExtras {
  /** Built-in destination classes, resolved by Nest. */
  destinations: Type<ExportDestination>[];
  imports?: ModuleMetadata['imports'];
}

export const { ConfigurableModuleClass: BillingModuleBase, MODULE_OPTIONS_TOKEN: BILLING_MODULE_OPTIONS } =
  new ConfigurableModuleBuilder<BillingModuleOptions>()
    .setClassMethodName('forRoot')
    .setExtras<BillingModuleExtras>({ destinations: [], imports: [] }, (definition, extras) =>
      extensionPointDefinition(definition, { classes: extras.destinations, collect: destinationsProvider(extras.destinations), imports: extras.imports }),
    )
    .build();

/** One array token: the built-in destinations plus plugins named in BILLING_EXPORT_DESTINATION_PLUGINS. */
function destinationsProvider(classes: Type<ExportDestination>[]): Provider & { provide: symbol } {
  return {
    provide: EXPORT_DESTINATIONS,
    inject: [billingConfig.KEY, PluginRegistry, ...classes],
    useFactory: async (config: ConfigType<typeof billingConfig>, registry: PluginRegistry, ...builtIn: ExportDestination[]) => {
      for (const destination of builtIn) registry.registerBuiltIn(EXPORT_DESTINATION_KIND, destination.name);
      return [...builtIn, ...(await registry.load(EXPORT_DESTINATION_KIND, config.destinationPlugins))];
    },
  };
}
