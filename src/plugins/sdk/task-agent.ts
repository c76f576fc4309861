import type { ChatCompletion, ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import type { PluginModuleBase, PluginOptions } from './version';

/** The LLM as an agent sees it: already scoped to the task and its user, with the task's budget enforced. */
export interface AgentLlm {
  chat(params: ChatCompletionCreateParamsNonStreaming, options?: { signal?: AbortSignal }): Promise<ChatCompletion>;
}

/** What a task asks for, as submitted (defaults already applied). */
export interface AgentTask {
  readonly id: string;
  readonly userId: string | null;
  readonly repoUrl: string;
  readonly bugDescription: string;
  readonly testCommand: string;
  readonly model: string;
  readonly maxAttempts: number;
  /** Budget of the task in USD; the LLM refuses a call that would pass it. */
  readonly maxCostUsd: number;
}

export interface AgentProgress {
  /** Attempt now running (1-based). */
  attempt?: number;
  /** Stage now running, e.g. `clone`, `model`, `apply`, `test`. */
  stage?: string;
  /** Latest patch tried. */
  patch?: string;
  /** Tail of the latest test output (already capped). */
  testOutputTail?: string;
}

export interface TaskAgentContext {
  readonly task: AgentTask;
  readonly llm: AgentLlm;
  /** Aborted when the task is cancelled or the service shuts down: stop work and kill child processes. */
  readonly signal: AbortSignal;
  /** Persists progress so `GET /api/v1/task/{id}` shows it while the task runs. */
  progress(update: AgentProgress): Promise<void>;
}

export interface TaskAgentResult {
  readonly outcome: 'succeeded' | 'failed';
  /** Why it failed, e.g. `tests_failed`, `budget_exceeded`, `clone_failed`, `no_patch`, `cancelled`. */
  readonly reason?: string;
  /** What happened, in words a user can act on (the git error, the provider's message, ...); shown as `failure_detail`. */
  readonly detail?: string | null;
  readonly attempts: number;
  /** The final patch (unified diff), when one was produced. */
  readonly patch?: string | null;
  readonly testOutputTail?: string | null;
}

/**
 * Runs one task. Built-ins are registered through `TasksModule.forRoot({ agents: [...] })` (the first
 * is the default), plugins through TASK_AGENT_PLUGINS.
 */
export interface TaskAgent {
  readonly name: string;
  run(ctx: TaskAgentContext): Promise<TaskAgentResult>;
}

/** Injection token of the array of task agents. */
export const TASK_AGENTS = Symbol('TASK_AGENTS');

/** A task agent plugin module, named in TASK_AGENT_PLUGINS. */
export interface TaskAgentPluginModule extends PluginModuleBase {
  createTaskAgent(options: PluginOptions): TaskAgent | Promise<TaskAgent>;
}
