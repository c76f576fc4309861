import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { tasksConfig, TasksConfig } from '../../../config/tasks.config';
import { AgentProgress, TaskAgent, TaskAgentContext, TaskAgentResult } from '../../../plugins/sdk';
import { llmRefusalReason } from '../../llm/llm.exceptions';
import { servicePaths } from '../repo-source/local-path';
import { GitCannotPinException, RepoHostForbiddenException, RepoHostUnresolvedException, RepoPathForbiddenException } from '../repo-source/repo-source.exceptions';
import { RepoSourcePolicy } from '../repo-source/repo-source.policy';
import { InvalidRepoUrlException, ParsedRepoUrl } from '../repo-url';
import { inSpan } from './agent-tracing';
import { tailOf } from './capped-output';
import { ContextBuilder } from './context-builder';
import { extractDiff } from './diff-extractor';
import { GitCommandError } from './git';
import { PatchApplier } from './patch-applier';
import { AttemptFeedback, buildMessages } from './prompt-builder';
import { buildSandboxEnv } from './sandbox-env';
import { Sandbox, TASK_SANDBOX } from '../sandbox/sandbox';
import { runSandboxedCommand, SandboxedCommandResult } from './sandboxed-command';
import { TokenCounter } from './token-counter';
import { Workspace } from './workspace';

/** The part of the tasks configuration the agent reads. */
export type BugFixAgentConfig = Pick<
  TasksConfig,
  | 'repoUrlSchemes'
  | 'workspaceDir'
  | 'cloneTimeoutMs'
  | 'testTimeoutMs'
  | 'killGraceMs'
  | 'testOutputMaxBytes'
  | 'contextMaxTokens'
  | 'contextMaxFileBytes'
  | 'testEnv'
>;

/** Characters of test output kept with the task (progress and result). */
export const TEST_OUTPUT_TAIL_CHARS = 4_000;
/** Share of the context budget one test output may take in the prompt. */
const TEST_OUTPUT_SHARE = 0.2;
/** Tokens of the fixed prompt text (instructions, headings) kept out of the file budget. */
const PROMPT_OVERHEAD_TOKENS = 600;

/** Stops the run from any depth: the task was cancelled or the service is shutting down. */
class Cancelled extends Error {}

type AttemptOutcome = 'no_patch' | 'patch_rejected' | 'tests_failed';

/**
 * The built-in bug-fix agent: clones the repository into a temporary workspace, runs the test
 * command once to see the failure, then per attempt gives the model the bug report, the file
 * tree and the most related files (plus the previous patch and what went wrong), applies the
 * diff it answers with, and runs the tests in a sandbox. Succeeds when the tests pass.
 */
@Injectable()
export class BugFixAgent implements TaskAgent {
  readonly name = 'bug-fix';
  private readonly logger = new Logger(BugFixAgent.name);
  private readonly tokens = new TokenCounter();
  private readonly contextBuilder = new ContextBuilder(this.tokens);
  private readonly patches = new PatchApplier();

  private readonly repoSources: RepoSourcePolicy;

  constructor(
    @Inject(tasksConfig.KEY) private readonly config: BugFixAgentConfig,
    @Inject(TASK_SANDBOX) private readonly sandbox: Sandbox,
    @Optional() repoSources?: RepoSourcePolicy,
  ) {
    // Built on its own (outside the service): the strict defaults, no internal hosts, no service paths.
    this.repoSources =
      repoSources ??
      new RepoSourcePolicy({
        repoUrlSchemes: config.repoUrlSchemes,
        allowLocalReposForUsers: false,
        repoHostAllowlist: [],
        servicePaths: servicePaths({ workingDir: process.cwd(), dataFiles: [], workspaceDir: config.workspaceDir }),
      });
  }

  async run(ctx: TaskAgentContext): Promise<TaskAgentResult> {
    const { task, signal } = ctx;
    const maxAttempts = Math.max(1, task.maxAttempts);
    let attempts = 0;
    let lastPatch: string | null = null;
    let lastTail: string | null = null;
    const result = (outcome: 'succeeded' | 'failed', reason?: string, detail?: string): TaskAgentResult => ({
      outcome,
      ...(reason ? { reason } : {}),
      ...(detail ? { detail } : {}),
      attempts,
      patch: lastPatch,
      testOutputTail: lastTail,
    });
    const progress = async (update: AgentProgress) => {
      if (signal.aborted) throw new Cancelled();
      try {
        await ctx.progress(update);
      } catch (err) {
        // Progress is for watchers; failing to store it must not fail the fix.
        this.logger.warn(`task ${task.id}: progress not saved: ${(err as Error).message}`);
      }
    };

    let ws: Workspace | undefined;
    try {
      // Checked again here, not only at submit: the host is resolved now and git is pinned to what was checked.
      let repo: ParsedRepoUrl;
      let cloneConfig: string[];
      try {
        ({ repo, gitConfig: cloneConfig } = await this.repoSources.prepareClone(task.repoUrl));
      } catch (err) {
        if (err instanceof InvalidRepoUrlException || err instanceof RepoHostForbiddenException || err instanceof RepoPathForbiddenException) {
          this.logger.warn(`task ${task.id}: repo_url refused: ${err.message}`);
          return result('failed', 'invalid_repo_url', err.message);
        }
        if (err instanceof RepoHostUnresolvedException || err instanceof GitCannotPinException) return result('failed', 'clone_failed', err.message);
        throw err;
      }

      await progress({ stage: 'clone' });
      ws = await Workspace.create(task.id, {
        parentDir: this.config.workspaceDir,
        gitEnv: this.config.testEnv,
        gitTimeoutMs: this.config.cloneTimeoutMs,
        sandbox: this.sandbox,
      });
      const workspace = ws;
      try {
        await inSpan('task.clone', { 'asa.task.repo_scheme': repo.scheme }, () => workspace.clone(repo, signal, cloneConfig));
      } catch (err) {
        if (signal.aborted) throw new Cancelled();
        this.logger.warn(`task ${task.id}: clone failed: ${(err as Error).message}`);
        lastTail = tailOf((err as Error).message, TEST_OUTPUT_TAIL_CHARS);
        return result('failed', 'clone_failed', cloneFailureDetail(err as Error));
      }
      const paths = await workspace.trackedFiles(signal);

      // The failing run on the original code tells the model (and the ranking) where to look.
      await progress({ stage: 'test', attempt: 0 });
      const baseline = await this.runTests(workspace, task.testCommand, 0, signal);
      lastTail = tailOf(baseline.output, TEST_OUTPUT_TAIL_CHARS);
      await progress({ stage: 'test', attempt: 0, testOutputTail: lastTail });

      const outputTokens = Math.floor(this.config.contextMaxTokens * TEST_OUTPUT_SHARE);
      const baselineOutput = this.tokens.truncateMiddle(baseline.output, outputTokens).text;
      let rankingOutput = baseline.output;
      let feedback: AttemptFeedback | null = null;
      const outcomes: AttemptOutcome[] = [];

      for (let attempt = 1; attempt <= maxAttempts; attempt++) {
        attempts = attempt;
        if (attempt > 1) await workspace.reset(signal);

        await progress({ stage: 'context', attempt });
        const feedbackTokens = feedback ? this.feedbackTokens(feedback) : 0;
        const filesBudget = Math.max(
          1_000,
          this.config.contextMaxTokens - this.tokens.count(baselineOutput) - feedbackTokens - PROMPT_OVERHEAD_TOKENS,
        );
        const context = await inSpan('task.context', { 'asa.task.attempt': attempt }, async (span) => {
          const c = await this.contextBuilder.build(
            workspace.repoDir,
            paths,
            { bugDescription: task.bugDescription, testOutput: rankingOutput },
            { maxTokens: filesBudget, maxFileBytes: this.config.contextMaxFileBytes },
          );
          span.setAttributes({
            'asa.task.context.files': c.files.length,
            'asa.task.context.files_omitted': c.omittedFiles,
            'asa.task.context.tokens': c.tokens,
          });
          return c;
        });
        const messages = buildMessages({
          bugDescription: task.bugDescription,
          testCommand: task.testCommand,
          context,
          baselineOutput,
          attempt,
          maxAttempts,
          feedback,
        });

        await progress({ stage: 'model', attempt });
        let reply: string;
        try {
          const completion = await ctx.llm.chat({ model: task.model, messages }, { signal });
          reply = completion.choices[0]?.message?.content ?? '';
        } catch (err) {
          if (signal.aborted) throw new Cancelled();
          const refused = llmRefusalReason(err);
          if (refused) return result('failed', refused, (err as Error).message);
          // The SDK's connection errors say only "Connection error.": name the address tried.
          const tried = ctx.llm.endpoint ? ` (LLM endpoint ${ctx.llm.endpoint}, OPENAI_BASE_URL)` : '';
          this.logger.warn(`task ${task.id}: model call failed: ${(err as Error).message}${tried}`);
          return result('failed', 'llm_error', `model call failed: ${(err as Error).message}${tried}`);
        }

        const patch = extractDiff(reply);
        if (!patch) {
          outcomes.push('no_patch');
          feedback = { kind: 'no_patch', reply };
          continue;
        }
        lastPatch = patch;

        await progress({ stage: 'apply', attempt, patch });
        const applied = await inSpan('task.apply', { 'asa.task.attempt': attempt, 'asa.task.patch.bytes': patch.length }, async (span) => {
          const r = await this.patches.apply(workspace, patch, `attempt-${attempt}.patch`, signal);
          span.setAttribute('asa.task.patch.applied', r.applied);
          return r;
        });
        if (!applied.applied) {
          outcomes.push('patch_rejected');
          feedback = { kind: 'patch_rejected', patch, error: applied.error };
          continue;
        }

        await progress({ stage: 'test', attempt, patch });
        const run = await this.runTests(workspace, task.testCommand, attempt, signal);
        lastTail = tailOf(run.output, TEST_OUTPUT_TAIL_CHARS);
        await progress({ stage: 'test', attempt, patch, testOutputTail: lastTail });
        if (run.passed) return result('succeeded');

        outcomes.push('tests_failed');
        rankingOutput = run.output;
        feedback = { kind: 'tests_failed', patch, testOutput: this.tokens.truncateMiddle(run.output, outputTokens).text };
      }

      const reason = outcomes.every((o) => o === 'no_patch')
        ? 'no_patch'
        : outcomes.includes('tests_failed')
          ? 'tests_failed'
          : 'patch_failed';
      const detail = {
        no_patch: `the model answered ${attempts} time(s) without a unified diff in a \`\`\`diff block`,
        tests_failed: `the tests still failed after ${attempts} attempt(s); see test_output_tail`,
        patch_failed: `no patch applied in ${attempts} attempt(s); last git apply error: ${feedback?.kind === 'patch_rejected' ? feedback.error : 'unknown'}`,
      }[reason];
      return result('failed', reason, detail);
    } catch (err) {
      if (err instanceof Cancelled || signal.aborted || (err instanceof GitCommandError && err.aborted)) {
        return result('failed', 'cancelled');
      }
      throw err;
    } finally {
      await ws?.dispose().catch((err: Error) => this.logger.error(`task ${task.id}: workspace not removed: ${err.message}`));
    }
  }

  private async runTests(ws: Workspace, command: string, attempt: number, signal: AbortSignal): Promise<SandboxedCommandResult> {
    const run = await inSpan('task.test', { 'asa.task.attempt': attempt }, async (span) => {
      const r = await runSandboxedCommand(command, {
        sandbox: this.sandbox,
        mounts: ws.mounts,
        onStart: (pgid) => ws.recordProcessGroup(pgid),
        cwd: ws.repoDir,
        env: buildSandboxEnv(this.config.testEnv, { home: ws.homeDir, tmp: ws.tmpDir }),
        timeoutMs: this.config.testTimeoutMs,
        killGraceMs: this.config.killGraceMs,
        maxOutputBytes: this.config.testOutputMaxBytes,
        signal,
      }).finally(() => ws.clearProcessGroup());
      span.setAttributes({
        'asa.task.test.exit_code': r.exitCode ?? -1,
        'asa.task.test.passed': r.passed,
        'asa.task.test.timed_out': r.timedOut,
        'asa.task.test.aborted': r.aborted,
        'asa.task.test.duration_ms': r.durationMs,
        'asa.task.test.output_bytes': r.outputBytes,
        'asa.task.test.output_truncated': r.outputTruncated,
      });
      if (r.exitSignal) span.setAttribute('asa.task.test.signal', r.exitSignal);
      return r;
    });
    if (run.aborted || signal.aborted) throw new Cancelled();
    // Paths relative to the repository, as the model sees the files (and no temp folder names).
    const output = run.output.split(`${ws.repoDir}/`).join('').split(ws.root).join('<workspace>');
    return { ...run, output };
  }

  private feedbackTokens(fb: AttemptFeedback): number {
    if (fb.kind === 'no_patch') return 50;
    return this.tokens.count(fb.patch) + this.tokens.count(fb.kind === 'tests_failed' ? fb.testOutput : fb.error);
  }
}

/** git's message, plus why when the server answered with a redirect (which is never followed). */
function cloneFailureDetail(err: Error): string {
  if (/returned error: 30[12378]\b/.test(err.message)) {
    return (
      `${err.message.trim()} (the server redirected; redirects are not followed, because the address they lead to was never checked: ` +
      'submit the repository\'s final URL)'
    );
  }
  return err.message;
}
