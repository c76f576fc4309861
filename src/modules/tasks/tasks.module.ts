import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { TypeOrmModule } from '@nestjs/typeorm';
import { tasksConfig, TasksConfig } from '../../config/tasks.config';
import { WorkspaceReaper } from './agent/workspace-reaper';
import { Task } from './entities/task.entity';
import { REPO_HOST_LOOKUP, RepoSourcePolicy, systemHostLookup } from './repo-source/repo-source.policy';
import { TaskRunner } from './task-runner.service';
import { TaskStatsService } from './task-stats.service';
import { TaskStore } from './task-store.service';
import { TaskUsageController } from './task-usage.controller';
import { TasksController } from './tasks.controller';
import { TasksModuleBase } from './tasks.module-definition';
import { TasksService } from './tasks.service';
import { createSandbox } from './sandbox/create-sandbox';
import { TASK_SANDBOX } from './sandbox/sandbox';

/**
 * Task API, persistent queue and workers. `TasksModule.forRoot({ agents: [...] })` in AppModule
 * lists the agent classes; the first one runs new tasks. Agents get the sandbox (TASK_SANDBOX)
 * under the TASK_SANDBOX token; it is checked at start, so a missing bubblewrap stops the start.
 */
@Module({
  imports: [TypeOrmModule.forFeature([Task]), ConfigModule.forFeature(tasksConfig)],
  controllers: [TasksController, TaskUsageController],
  providers: [
    TaskStore,
    TaskRunner,
    TasksService,
    TaskStatsService,
    RepoSourcePolicy,
    // The edge to DNS, a provider so tests can answer for names that exist in no DNS.
    { provide: REPO_HOST_LOOKUP, useValue: systemHostLookup },
    WorkspaceReaper,
    { provide: TASK_SANDBOX, inject: [tasksConfig.KEY], useFactory: (config: TasksConfig) => createSandbox(config) },
  ],
  exports: [TaskStatsService, TaskStore],
})
export class TasksModule extends TasksModuleBase {}
