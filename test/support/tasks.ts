import { Injectable } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DataSource } from 'typeorm';
import { Task } from '../../src/modules/tasks/entities/task.entity';
import { bearer, writeApiKeysFile } from './api-keys';
import type { TaskAgent, TaskAgentContext, TaskAgentResult } from '../../src/plugins/sdk';

/**
 * A small real agent for queue and API tests (the built-in bug-fix agent has its own tests).
 * What it does is chosen by the task's bug_description:
 * - `llm-succeed`: one LLM call through ctx.llm, then succeeded with a patch;
 * - `llm-fail`: one LLM call per attempt up to max_attempts, then failed `tests_failed`;
 * - `llm-until-budget`: LLM calls until the client refuses one (the exception propagates);
 * - `hold`: waits until released by the test or aborted (then returns failed `cancelled`);
 * - `hold-ignore-abort`: waits until released, ignoring the abort signal;
 * - `llm-hold`: one LLM call, then waits until released (or aborted), then succeeded with a
 *   patch and test output naming the task (see `heldOutcome`);
 * - `quick`: succeeded at once, no LLM call;
 * - `throw`: throws.
 */
@Injectable()
export class ScriptedAgent implements TaskAgent {
  readonly name = 'scripted';
  readonly started: string[] = [];
  readonly abortReasons = new Map<string, unknown>();
  running = 0;
  maxRunning = 0;
  private readonly releases = new Map<string, () => void>();
  /** Released before (or after) the task got to wait: release is remembered, never lost. */
  private readonly released = new Set<string>();
  private releasedAll = false;

  release(taskId: string): void {
    this.released.add(taskId);
    this.releases.get(taskId)?.();
  }

  releaseAll(): void {
    this.releasedAll = true;
    for (const r of this.releases.values()) r();
  }

  async run(ctx: TaskAgentContext): Promise<TaskAgentResult> {
    const { task } = ctx;
    this.started.push(task.id);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      return await this.script(ctx);
    } finally {
      this.running--;
    }
  }

  /** Waits until the task is released or its signal aborted. */
  private held(ctx: TaskAgentContext): Promise<'released' | 'aborted'> {
    const { task, signal } = ctx;
    return new Promise((resolve) => {
      this.releases.set(task.id, () => resolve('released'));
      if (this.releasedAll || this.released.has(task.id)) resolve('released');
      if (signal.aborted) resolve('aborted');
      signal.addEventListener('abort', () => resolve('aborted'), { once: true });
    });
  }

  private async script(ctx: TaskAgentContext): Promise<TaskAgentResult> {
    const { task, llm, signal } = ctx;
    const ask = (attempt: number) =>
      llm.chat({ model: task.model, messages: [{ role: 'user', content: `attempt ${attempt}: ${task.bugDescription}` }] }, { signal });
    switch (task.bugDescription) {
      case 'llm-succeed': {
        await ctx.progress({ attempt: 1, stage: 'model' });
        const reply = await ask(1);
        const patch = reply.choices[0]?.message?.content ?? '';
        await ctx.progress({ patch, stage: 'test', testOutputTail: 'ok 1 - fixed' });
        return { outcome: 'succeeded', attempts: 1, patch, testOutputTail: 'ok 1 - fixed' };
      }
      case 'llm-fail': {
        for (let a = 1; a <= task.maxAttempts; a++) {
          await ctx.progress({ attempt: a, stage: 'model' });
          await ask(a);
        }
        return { outcome: 'failed', reason: 'tests_failed', attempts: task.maxAttempts, testOutputTail: 'not ok 1' };
      }
      case 'llm-until-budget': {
        for (let a = 1; ; a++) {
          await ctx.progress({ attempt: a, stage: 'model' });
          await ask(a);
        }
      }
      case 'llm-hold': {
        await ctx.progress({ attempt: 1, stage: 'model' });
        await ask(1);
        const outcome = heldOutcome(task.id);
        await ctx.progress({ stage: 'test', patch: outcome.patch });
        if ((await this.held(ctx)) === 'aborted') return { outcome: 'failed', reason: 'cancelled', attempts: 1 };
        return { outcome: 'succeeded', attempts: 1, ...outcome };
      }
      case 'hold':
      case 'hold-ignore-abort': {
        await ctx.progress({ attempt: 1, stage: 'test' });
        const released = new Promise<'released'>((resolve) => {
          this.releases.set(task.id, () => resolve('released'));
          if (this.releasedAll || this.released.has(task.id)) resolve('released');
        });
        const aborted = new Promise<'aborted'>((resolve) => {
          if (task.bugDescription === 'hold-ignore-abort') return;
          if (signal.aborted) resolve('aborted');
          signal.addEventListener('abort', () => resolve('aborted'), { once: true });
        });
        signal.addEventListener('abort', () => this.abortReasons.set(task.id, signal.reason), { once: true });
        const how = await Promise.race([released, aborted]);
        if (how === 'aborted') return { outcome: 'failed', reason: 'cancelled', attempts: 1 };
        return { outcome: 'succeeded', attempts: 1, patch: 'diff --git a/x b/x' };
      }
      case 'quick':
        return { outcome: 'succeeded', attempts: 1, patch: null };
      case 'throw':
        throw new Error('scripted agent failure');
      default:
        return { outcome: 'failed', reason: `unknown script ${task.bugDescription}`, attempts: 0 };
    }
  }
}

/** What an `llm-hold` task ends with: text unique to the task, to tell its outcome from any other. */
export const heldOutcome = (taskId: string) => ({ patch: `diff --git a/${taskId} b/${taskId}`, testOutputTail: `ok 1 - ${taskId} fixed` });

export const ADMIN_KEY = 'asa_test-admin-key-0000000000000000000000000';
export const ALICE_KEY = 'asa_test-alice-key-0000000000000000000000000';
export const BOB_KEY = 'asa_test-bobby-key-0000000000000000000000000';

/** Writes an API keys file with an admin key and user keys for alice and bob; returns its path. */
export function writeApiKeys(dir: string): string {
  return writeApiKeysFile(dir, [
    { name: 'admin', key: ADMIN_KEY },
    { name: 'alice', key: ALICE_KEY, userId: 'alice' },
    { name: 'bob', key: BOB_KEY, userId: 'bob' },
  ]);
}

export { bearer };


/** GET /api/v1/task/{id} until `done(task)` holds; fails with the last state after `timeoutMs`. */
export async function waitForTask(
  app: NestFastifyApplication,
  taskId: string,
  done: (task: any) => boolean, // eslint-disable-line @typescript-eslint/no-explicit-any
  opts: { timeoutMs?: number; headers?: Record<string, string> } = {},
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
): Promise<any> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let last: unknown;
  while (Date.now() < deadline) {
    const res = await app.inject({ method: 'GET', url: `/api/v1/task/${taskId}`, headers: opts.headers });
    last = res.json();
    if (res.statusCode === 200 && done(last)) return last;
    await sleep(25);
  }
  throw new Error(`task ${taskId} did not reach the expected state; last: ${JSON.stringify(last)}`);
}

export const isFinal = (t: { status: string }) => ['succeeded', 'failed', 'cancelled'].includes(t.status);

/** Waits until `cond()` is true (polling), or throws `what`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for: ${what}`);
}

export interface BuggyRepo {
  /** Absolute path of the repository (usable as repo_url). */
  path: string;
  /** `node test.js`: fails before the fix, passes after. */
  testCommand: string;
  /** A unified diff that fixes the bug (what a good model answers). */
  goodDiff: string;
  /** A diff that applies cleanly but does not fix the bug. */
  wrongDiff: string;
}

/** A real git repository with a failing Node test: `add` subtracts. */
export function createBuggyRepo(parent: string, name = 'buggy-repo'): BuggyRepo {
  const path = join(parent, name);
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, 'math.js'), 'function add(a, b) {\n  return a - b;\n}\n\nmodule.exports = { add };\n');
  writeFileSync(
    join(path, 'test.js'),
    "const assert = require('node:assert');\nconst { add } = require('./math');\n\nassert.strictEqual(add(2, 3), 5, 'add(2, 3) should be 5');\nconsole.log('ok 1 - add works');\n",
  );
  writeFileSync(join(path, 'README.md'), '# buggy\n\nRun `node test.js`.\n');
  const git = (...args: string[]) =>
    execFileSync('git', args, {
      cwd: path,
      env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' },
      stdio: 'pipe',
    });
  git('init', '-q', '-b', 'main');
  git('add', '.');
  git('commit', '-q', '-m', 'add with a bug');
  const goodDiff = [
    'diff --git a/math.js b/math.js',
    '--- a/math.js',
    '+++ b/math.js',
    '@@ -1,3 +1,3 @@',
    ' function add(a, b) {',
    '-  return a - b;',
    '+  return a + b;',
    ' }',
    '',
  ].join('\n');
  const wrongDiff = goodDiff.replace('+  return a + b;', '+  return a * b;');
  return { path, testCommand: 'node test.js', goodDiff, wrongDiff };
}

/** The list order the API promises: created_at descending, ties (same millisecond) by task_id descending. */
export async function expectedListOrder(app: NestFastifyApplication, ids: string[], headers?: Record<string, string>): Promise<string[]> {
  const rows = await Promise.all(ids.map(async (id) => (await app.inject({ method: 'GET', url: `/api/v1/task/${id}`, headers })).json()));
  return rows
    .sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at) || (a.task_id < b.task_id ? 1 : a.task_id > b.task_id ? -1 : 0))
    .map((r) => r.task_id);
}

/** Writes a task row directly, as another process (or an earlier day) would have left it. */
export async function insertTaskRow(ds: DataSource, row: Partial<Task> & Pick<Task, 'id' | 'status'>): Promise<void> {
  const now = Date.now();
  await ds
    .createQueryBuilder()
    .insert()
    .into(Task)
    .values({
      userId: null,
      repoUrl: '/tmp/none',
      bugDescription: 'written by the test',
      testCommand: 'true',
      model: 'gpt-4o-mini',
      maxCostNanos: 1_000_000_000,
      maxAttempts: 3,
      agent: 'scripted',
      attempts: 1,
      cancelRequested: false,
      createdAtMs: now - 60_000,
      startedAtMs: now - 50_000,
      ...row,
    })
    .execute();
}
