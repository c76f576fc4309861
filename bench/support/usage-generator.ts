/**
 * A deterministic usage data set on the current schema, written with the database's own row
 * generator (a recursive CTE on SQLite, generate_series on PostgreSQL): 90 days, 50 models,
 * 1,000 users, up to 100,000 tasks. Row i's values depend on i only, so a data set grows by
 * appending rows [from, to) and every prefix is spread over the whole 90 days.
 *
 * This is the swap point for the issue 14 generator (bench/generate-usage.ts, with the rollups):
 * bench/usage-queries.ts calls `loadUsageGenerator()`, which prefers that module when it exports
 * a `UsageGenerator`-shaped `generateUsage`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const DAYS = 90;
export const MODELS = 50;
export const USERS = 1_000;
const DAY_MS = 86_400_000;

export interface UsageTarget {
  readonly type: 'sqlite' | 'postgres';
  /** Runs one SQL statement. */
  readonly exec: (sql: string) => Promise<void>;
}

export interface UsageSpec {
  /** Start of the 90 days (epoch ms). */
  readonly startMs: number;
  readonly tasks: number;
}

export type UsageGenerator = (target: UsageTarget, spec: UsageSpec, from: number, to: number) => Promise<void>;

/** The usage rows [from, to) (and, with the first rows, the tasks). */
export const generateUsage: UsageGenerator = async (target, spec, from, to) => {
  if (from === 0) await target.exec(tasksSql(target.type, spec));
  const chunk = target.type === 'postgres' ? 1_000_000 : 200_000;
  for (let a = from; a < to; a += chunk) await target.exec(usageSql(target.type, spec, a, Math.min(to, a + chunk)));
};

export function loadUsageGenerator(): { name: string; generate: UsageGenerator } {
  const candidate = join(__dirname, '..', 'generate-usage.ts');
  if (existsSync(candidate)) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(candidate) as { generateUsage?: unknown };
    if (typeof mod.generateUsage === 'function' && mod.generateUsage.length === 4) return { name: 'bench/generate-usage.ts', generate: mod.generateUsage as UsageGenerator };
  }
  return { name: 'bench/support/usage-generator.ts', generate: generateUsage };
}

function usageSql(type: UsageTarget['type'], spec: UsageSpec, from: number, to: number): string {
  const period = DAYS * DAY_MS;
  // h: a pseudo-random number per row (Lehmer), t: the row's task.
  const h = '((i * 48271) % 2147483647)';
  const t = `((i * 40503) % ${spec.tasks})`;
  const text = (e: string) => (type === 'postgres' ? `(${e})::text` : `(${e})`);
  const cols =
    'id, created_at_ms, task_id, user_id, provider, operation, requested_model, response_model, input_tokens, cached_input_tokens, output_tokens, ' +
    'total_tokens, cost_nanos, unpriced, price_source, latency_ms, status, error_type, streamed, estimated';
  const select =
    `SELECT ${type === 'postgres' ? `'00000000-0000-4000-8000-' || lpad(i::text, 12, '0')` : `printf('00000000-0000-4000-8000-%012d', i)`}, ` +
    `${spec.startMs} + ((i * 2654435761) % ${period}), 'bench-task-' || ${text(t)}, 'user-' || ${text(`(${t} * 7) % ${USERS}`)}, 'openai', 'chat', ` +
    `'bench-model-' || ${text(`${h} % ${MODELS}`)}, 'bench-model-' || ${text(`${h} % ${MODELS}`)}, ` +
    `200 + ${h} % 3000, (${h} % 4) * 50, 20 + ${h} % 500, 220 + ${h} % 3000 + ${h} % 500, ` +
    `(200 + ${h} % 3000) * 150 + (20 + ${h} % 500) * 600, (1 = 0), 'bench', 300.0 + ${h} % 5000, ` +
    `CASE WHEN ${h} % 100 < 3 THEN 'error' ELSE 'success' END, CASE WHEN ${h} % 100 < 3 THEN 'http_429' END, (${h} % 5 = 0), (1 = 0)`;
  if (type === 'postgres') return `INSERT INTO llm_usage (${cols}) ${select} FROM generate_series(${from}::bigint, ${to - 1}::bigint) AS g(i)`;
  return `WITH RECURSIVE n(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM n WHERE i < ${to - 1}) INSERT INTO llm_usage (${cols}) ${select} FROM n`;
}

function tasksSql(type: UsageTarget['type'], spec: UsageSpec): string {
  const step = Math.floor((DAYS * DAY_MS) / spec.tasks);
  const text = (e: string) => (type === 'postgres' ? `(${e})::text` : `(${e})`);
  const cols =
    'id, status, user_id, repo_url, bug_description, test_command, model, max_cost_nanos, max_attempts, agent, attempts, stage, failure_reason, ' +
    'cancel_requested, created_at_ms, started_at_ms, finished_at_ms';
  const select =
    `SELECT 'bench-task-' || ${text('k')}, CASE WHEN k % 5 = 0 THEN 'failed' ELSE 'succeeded' END, 'user-' || ${text(`(k * 7) % ${USERS}`)}, ` +
    `'https://example.invalid/repo.git', 'bench', 'true', 'bench-model-' || ${text(`k % ${MODELS}`)}, 1000000000, 3, 'bugfix', 1 + k % 3, 'done', ` +
    `CASE WHEN k % 5 = 0 THEN 'tests_failed' END, (1 = 0), ${spec.startMs} + k * ${step}, ${spec.startMs} + k * ${step} + 1000, ` +
    `${spec.startMs} + k * ${step} + 60000 + (k % 600) * 1000`;
  // bigint: k × step passes 2^31.
  if (type === 'postgres') return `INSERT INTO tasks (${cols}) ${select} FROM generate_series(0::bigint, ${spec.tasks - 1}::bigint) AS g(k)`;
  return `WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < ${spec.tasks - 1}) INSERT INTO tasks (${cols}) ${select} FROM n`;
}
