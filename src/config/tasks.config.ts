import { registerAs } from '@nestjs/config';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { pickPassthroughEnv } from '../modules/tasks/agent/sandbox-env';
import { servicePaths } from '../modules/tasks/repo-source/local-path';
import { DEFAULT_REPO_URL_SCHEMES, RepoUrlScheme } from '../modules/tasks/repo-url';
import type { SandboxKind } from '../modules/tasks/sandbox/sandbox';
import { DEFAULT_API_KEYS_FILE } from './auth.config';
import { parseDatabaseUrl } from './database.config';
import { pluginList } from '../modules/plugins/plugin-kinds';
import { validateEnv } from './env.validation';
import { defaultJournalDir } from './usage.config';

export const tasksConfig = registerAs('tasks', () => {
  const env = validateEnv(process.env);
  const workspaceDir = env.TASK_WORKSPACE_DIR ? resolve(env.TASK_WORKSPACE_DIR) : tmpdir();
  const db = parseDatabaseUrl(env.DATABASE_URL);
  const pollIntervalMs = env.TASK_POLL_INTERVAL_MS ?? 1_000;
  // Several missed heartbeats, not one late one, must make a worker look dead.
  if (env.TASK_STALE_AFTER_MS !== undefined && env.TASK_STALE_AFTER_MS < 3 * pollIntervalMs) {
    throw new Error(
      `Invalid environment configuration:\n  TASK_STALE_AFTER_MS=${env.TASK_STALE_AFTER_MS}: TASK_STALE_AFTER_MS must be at least 3 x TASK_POLL_INTERVAL_MS (${3 * pollIntervalMs})`,
    );
  }
  return {
    /** Module paths or package names of extra task agents, comma separated (docs/plugins.md). */
    agentPlugins: pluginList(env.TASK_AGENT_PLUGINS),
    /** Tasks one process runs at the same time (each replica runs its own workers). */
    concurrency: env.TASK_CONCURRENCY ?? 2,
    /** How often idle workers look for queued tasks (a submit to this process wakes them at once). */
    pollIntervalMs,
    /**
     * A worker whose heartbeat is older than this is taken for dead and its running tasks are
     * marked `interrupted` (PostgreSQL replicas; on SQLite at start).
     */
    staleAfterMs: env.TASK_STALE_AFTER_MS ?? Math.max(30_000, 10 * pollIntervalMs),
    /** Model used when a submit names none. */
    defaultModel: env.TASK_DEFAULT_MODEL ?? 'gpt-4o-mini',
    /** Budget of a task in USD when a submit names none. */
    defaultMaxCostUsd: env.TASK_MAX_COST_USD ?? 1,
    /** Kinds of repo_url accepted: https, http, file, local (absolute paths), ssh, git. */
    repoUrlSchemes: (env.TASK_REPO_URL_SCHEMES
      ? env.TASK_REPO_URL_SCHEMES.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)
      : [...DEFAULT_REPO_URL_SCHEMES]) as RepoUrlScheme[],
    /** User-scoped keys may use the kinds above beyond https (http, file, local, ssh, git) only when true. */
    allowLocalReposForUsers: env.TASK_ALLOW_LOCAL_REPOS_FOR_USERS ?? false,
    /** Host names, addresses and CIDR ranges that may be cloned from although they are loopback, private or link-local. */
    repoHostAllowlist: (env.TASK_REPO_HOST_ALLOWLIST ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    /**
     * The service's own paths no local repo_url may reach, for any key: the working folder (and the
     * git repository it is in), the database file, the API keys file, other tasks' workspaces.
     */
    servicePaths: servicePaths({
      workingDir: process.cwd(),
      dataFiles: [
        ...(db.type === 'sqlite' && db.path !== ':memory:' ? [db.path] : []),
        resolve(env.API_KEYS_FILE ?? DEFAULT_API_KEYS_FILE),
        env.USAGE_JOURNAL_DIR ? resolve(env.USAGE_JOURNAL_DIR) : defaultJournalDir(env.DATABASE_URL),
      ],
      workspaceDir,
    }),
    /** On shutdown, running tasks get this long to finish before they are aborted as `interrupted`. */
    shutdownGraceMs: env.TASK_SHUTDOWN_GRACE_MS ?? 5_000,
    /**
     * A task's agent run (built in or a plugin) is aborted after this long and the task fails
     * `timeout`; an agent that does not return then is left behind, so its worker slot is freed.
     * Two hours: ten attempts with a test run of TASK_TEST_TIMEOUT_MS each fit.
     */
    runTimeoutMs: env.TASK_RUN_TIMEOUT_MS ?? 7_200_000,
    // --- bug-fix agent ---
    /** Each task gets a temporary folder here (checkout, HOME and TMPDIR of its tests), removed when it ends. */
    workspaceDir,
    /** Time limit of `git clone` and of each other git command of a task. */
    cloneTimeoutMs: env.TASK_CLONE_TIMEOUT_MS ?? 120_000,
    /** Time limit of one run of a task's test_command; its whole process group is killed after it. */
    testTimeoutMs: env.TASK_TEST_TIMEOUT_MS ?? 300_000,
    /** Between SIGTERM and SIGKILL when a test command is stopped. */
    killGraceMs: env.TASK_KILL_GRACE_MS ?? 2_000,
    /** Output of one test run kept (head and tail). */
    testOutputMaxBytes: env.TASK_TEST_OUTPUT_MAX_BYTES ?? 256 * 1024,
    /** Tokens of repository context (tree, files, test output) sent to the model per attempt. */
    contextMaxTokens: env.TASK_CONTEXT_MAX_TOKENS ?? 24_000,
    /** Files larger than this are listed but never sent to the model. */
    contextMaxFileBytes: env.TASK_CONTEXT_MAX_FILE_BYTES ?? 200_000,
    /**
     * The only variables of the service's environment a test command sees: PATH, locale and terminal
     * settings plus TASK_TEST_ENV_PASSTHROUGH, never anything named like a secret.
     */
    testEnv: pickPassthroughEnv(process.env, (env.TASK_TEST_ENV_PASSTHROUGH ?? '').split(',').map((s) => s.trim()).filter(Boolean)),
    /**
     * Where a task's test command and git on its checkout run: `bwrap` (a bubblewrap sandbox, the
     * default) or `none` (no isolation: set explicitly; user-scoped API keys may then not submit tasks).
     */
    sandbox: (env.TASK_SANDBOX ?? 'bwrap') as SandboxKind,
    /** Whether sandboxed test commands may use the network (off by default). */
    sandboxNetwork: env.TASK_SANDBOX_NETWORK ?? false,
    /** The service's PATH, where bubblewrap is looked for. */
    executableSearchPath: process.env.PATH ?? '',
  };
});
export type TasksConfig = ReturnType<typeof tasksConfig>;
