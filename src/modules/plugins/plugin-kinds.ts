import { PluginKind, shapeProblem } from '../../common/plugin-loader';
import type { AlertNotifier, ExportDestination, TaskAgent, UsageSink } from '../../plugins/sdk';

/** The four kinds of plugin, as `GET /api/v1/plugins` names them. */
export type PluginKindName = 'sink' | 'notifier' | 'destination' | 'agent';

export interface KindDefinition<T> extends PluginKind<T> {
  name: PluginKindName;
}

export const USAGE_SINK_KIND: KindDefinition<UsageSink> = {
  name: 'sink',
  label: 'Usage sink',
  variable: 'USAGE_SINK_PLUGINS',
  factory: 'createUsageSink',
  problem: (v) => shapeProblem(v, ['write']),
};

export const ALERT_NOTIFIER_KIND: KindDefinition<AlertNotifier> = {
  name: 'notifier',
  label: 'Alert notifier',
  variable: 'ALERT_NOTIFIER_PLUGINS',
  factory: 'createAlertNotifier',
  problem: (v) => shapeProblem(v, ['send']),
};

export const EXPORT_DESTINATION_KIND: KindDefinition<ExportDestination> = {
  name: 'destination',
  label: 'Export destination',
  variable: 'BILLING_EXPORT_DESTINATION_PLUGINS',
  factory: 'createExportDestination',
  problem: (v) => shapeProblem(v, ['deliver']),
};

export const TASK_AGENT_KIND: KindDefinition<TaskAgent> = {
  name: 'agent',
  label: 'Task agent',
  variable: 'TASK_AGENT_PLUGINS',
  factory: 'createTaskAgent',
  problem: (v) => shapeProblem(v, ['run']),
};

/** Splits a `*_PLUGINS` variable: comma-separated paths or package names. */
export const pluginList = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
