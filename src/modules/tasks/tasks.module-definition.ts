import { ConfigurableModuleBuilder, ModuleMetadata, Provider, Type } from '@nestjs/common';
import { ConfigType } from '@nestjs/config';
import { extensionPointDefinition } from '../../common/extension-point';
import { tasksConfig } from '../../config/tasks.config';
import { TASK_AGENTS, TaskAgent } from '../../plugins/sdk';
import { TASK_AGENT_KIND } from '../plugins/plugin-kinds';
import { PluginRegistry } from '../plugins/plugin-registry.service';

export interface TasksModuleOptions {
  /** Nothing to configure beyond the extras today; kept as the options token for agents to read. */
  readonly label?: string;
}

export interface TasksModuleExtras {
  /** Agent classes, resolved by Nest (so they can inject what they need). The first is the default. */
  agents: Type<TaskAgent>[];
  /** Modules the agent classes depend on. */
  imports?: ModuleMetadata['imports'];
}

export const { ConfigurableModuleClass: TasksModuleBase, MODULE_OPTIONS_TOKEN: TASKS_MODULE_OPTIONS } =
  new ConfigurableModuleBuilder<TasksModuleOptions>()
    .setClassMethodName('forRoot')
    .setExtras<TasksModuleExtras>({ agents: [], imports: [] }, (definition, extras) =>
      extensionPointDefinition(definition, { classes: extras.agents, collect: agentsProvider(extras.agents), imports: extras.imports }),
    )
    .build();

/** One array token: the built-in agent classes (the first is the default) plus plugins named in TASK_AGENT_PLUGINS. */
function agentsProvider(agentClasses: Type<TaskAgent>[]): Provider & { provide: symbol } {
  return {
    provide: TASK_AGENTS,
    inject: [tasksConfig.KEY, PluginRegistry, ...agentClasses],
    useFactory: async (config: ConfigType<typeof tasksConfig>, registry: PluginRegistry, ...builtIn: TaskAgent[]) => {
      for (const agent of builtIn) registry.registerBuiltIn(TASK_AGENT_KIND, agent.name);
      const agents = [...builtIn, ...(await registry.load(TASK_AGENT_KIND, config.agentPlugins))];
      if (agents.length === 0) throw new Error('TasksModule.forRoot({ agents }) or TASK_AGENT_PLUGINS must give at least one task agent');
      return agents;
    },
  };
}
