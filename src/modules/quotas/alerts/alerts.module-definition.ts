import { ConfigurableModuleBuilder, ModuleMetadata, Provider, Type } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { extensionPointDefinition, assertUniqueNames } from '../../../common/extension-point';
import { alertsConfig, AlertsConfig } from '../../../config/alerts.config';
import { ALERT_NOTIFIERS, AlertNotifier } from '../../../plugins/sdk';
import { loadNotifierPlugins } from './notifier-plugin-loader';

/**
 * A notifier class. Built-ins also have a static `isConfigured(config)`: they are always
 * instantiated (Nest resolves every listed class) but listed only when their settings are present.
 */
export type NotifierClass = Type<AlertNotifier> & { isConfigured?(config: AlertsConfig): boolean };

export interface AlertsModuleOptions {
  /** Nothing to configure beyond the extras today; kept as the options token for plugins to read. */
  readonly label?: string;
}

export interface AlertsModuleExtras {
  notifiers: NotifierClass[];
  imports?: ModuleMetadata['imports'];
}

export const { ConfigurableModuleClass: AlertsModuleBase, MODULE_OPTIONS_TOKEN: ALERTS_MODULE_OPTIONS } =
  new ConfigurableModuleBuilder<AlertsModuleOptions>()
    .setClassMethodName('forRoot')
    .setExtras<AlertsModuleExtras>({ notifiers: [], imports: [] }, (definition, extras) =>
      extensionPointDefinition(definition, {
        classes: extras.notifiers,
        collect: notifiersProvider(extras.notifiers),
        imports: extras.imports,
        global: true,
      }),
    )
    .build();

/** One array token: the configured built-ins plus plugins named in ALERT_NOTIFIER_PLUGINS. */
function notifiersProvider(classes: NotifierClass[]): Provider & { provide: symbol } {
  return {
    provide: ALERT_NOTIFIERS,
    inject: [alertsConfig.KEY, ...classes],
    useFactory: async (config: ConfigType<typeof alertsConfig>, ...builtIn: AlertNotifier[]) => {
      const configured = builtIn.filter((_, i) => classes[i].isConfigured?.(config) ?? true);
      const all = [...configured, ...(await loadNotifierPlugins(config.notifierPlugins))];
      assertUniqueNames(all, 'alert notifier');
      return all;
    },
  };
}
