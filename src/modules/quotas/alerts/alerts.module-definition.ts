import { ConfigurableModuleBuilder, ModuleMetadata, Provider, Type } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { extensionPointDefinition } from '../../../common/extension-point';
import { alertsConfig, AlertsConfig } from '../../../config/alerts.config';
import { ALERT_NOTIFIERS, AlertNotifier } from '../../../plugins/sdk';
import { ALERT_NOTIFIER_KIND } from '../../plugins/plugin-kinds';
import { PluginRegistry } from '../../plugins/plugin-registry.service';

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
    inject: [alertsConfig.KEY, PluginRegistry, ...classes],
    useFactory: async (config: ConfigType<typeof alertsConfig>, registry: PluginRegistry, ...builtIn: AlertNotifier[]) => {
      const configured = builtIn.filter((notifier, i) => {
        const on = classes[i].isConfigured?.(config) ?? true;
        // Listed either way, so GET /api/v1/plugins shows which built-ins are off.
        registry.registerBuiltIn(ALERT_NOTIFIER_KIND, notifier.name, on ? {} : { disabled: 'not configured (its settings are absent)' });
        return on;
      });
      return [...configured, ...(await registry.load(ALERT_NOTIFIER_KIND, config.notifierPlugins))];
    },
  };
}
