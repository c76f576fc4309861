import { registerAs } from '@nestjs/config';
import { DEFAULT_REPO_URL_SCHEMES, RepoUrlScheme } from '../modules/tasks/repo-url';
import { validateEnv } from './env.validation';

export const tasksConfig = registerAs('tasks', () => {
  const env = validateEnv(process.env);
  return {
    /** Tasks one process runs at the same time (each replica runs its own workers). */
    concurrency: env.TASK_CONCURRENCY ?? 2,
    /** How often idle workers look for queued tasks (a submit to this process wakes them at once). */
    pollIntervalMs: env.TASK_POLL_INTERVAL_MS ?? 1_000,
    /** Model used when a submit names none. */
    defaultModel: env.TASK_DEFAULT_MODEL ?? 'gpt-4o-mini',
    /** Budget of a task in USD when a submit names none. */
    defaultMaxCostUsd: env.TASK_MAX_COST_USD ?? 1,
    /** Kinds of repo_url accepted: https, http, file, local (absolute paths), ssh, git. */
    repoUrlSchemes: (env.TASK_REPO_URL_SCHEMES
      ? env.TASK_REPO_URL_SCHEMES.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)
      : [...DEFAULT_REPO_URL_SCHEMES]) as RepoUrlScheme[],
    /** On shutdown, running tasks get this long to finish before they are aborted as `interrupted`. */
    shutdownGraceMs: env.TASK_SHUTDOWN_GRACE_MS ?? 10_000,
  };
});
export type TasksConfig = ReturnType<typeof tasksConfig>;
