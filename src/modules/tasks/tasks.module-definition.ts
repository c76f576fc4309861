import { ConfigurableModuleBuilder, ModuleMetadata, Provider, Type } from '@nestjs/common';
import { assertUniqueNames, extensionPointDefinition } from '../../common/extension-point';
import { TASK_AGENTS, TaskAgent } from '../../plugins/sdk';

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

/** One array token for every agent class, checked once at boot. */
function agentsProvider(agentClasses: Type<TaskAgent>[]): Provider & { provide: symbol } {
  return {
    provide: TASK_AGENTS,
    inject: agentClasses,
    useFactory: (...agents: TaskAgent[]) => {
      if (agents.length === 0) throw new Error('TasksModule.forRoot({ agents }) needs at least one task agent');
      assertUniqueNames(agents, 'task agent');
      return agents;
    },
  };
}
