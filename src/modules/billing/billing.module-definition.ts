import { ConfigurableModuleBuilder, ModuleMetadata, Provider, Type } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { assertUniqueNames, extensionPointDefinition } from '../../common/extension-point';
import { loadPlugins, PLUGIN_NAME_PATTERN } from '../../common/plugin-loader';
import { billingConfig } from '../../config/billing.config';
import { EXPORT_DESTINATIONS, ExportDestination } from '../../plugins/sdk';

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

/** Loads destinations named in BILLING_EXPORT_DESTINATION_PLUGINS (modules exporting createExportDestination()). */
export function loadDestinationPlugins(specs: readonly string[]): Promise<ExportDestination[]> {
  return loadPlugins<ExportDestination>(specs, {
    kind: 'Export destination',
    factory: 'createExportDestination',
    problem: (v) => {
      const d = v as ExportDestination | null;
      if (!d || typeof d.name !== 'string' || typeof d.deliver !== 'function') return 'did not return an object with name and deliver()';
      return PLUGIN_NAME_PATTERN.test(d.name) ? null : `returned the name "${d.name}"; a name must be 1-64 characters of a-z, 0-9, _ and -`;
    },
  });
}

/** One array token: the built-in destinations plus plugins named in BILLING_EXPORT_DESTINATION_PLUGINS. */
function destinationsProvider(classes: Type<ExportDestination>[]): Provider & { provide: symbol } {
  return {
    provide: EXPORT_DESTINATIONS,
    inject: [billingConfig.KEY, ...classes],
    useFactory: async (config: ConfigType<typeof billingConfig>, ...builtIn: ExportDestination[]) => {
      const all = [...builtIn, ...(await loadDestinationPlugins(config.destinationPlugins))];
      assertUniqueNames(all, 'export destination');
      return all;
    },
  };
}
