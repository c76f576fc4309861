import type { ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { RepoContext } from './context-builder';

/** What went wrong with the previous attempt, fed back to the model. */
export type AttemptFeedback =
  | { readonly kind: 'no_patch'; readonly reply: string }
  | { readonly kind: 'patch_rejected'; readonly patch: string; readonly error: string }
  | { readonly kind: 'tests_failed'; readonly patch: string; readonly testOutput: string };

export interface PromptInput {
  readonly bugDescription: string;
  readonly testCommand: string;
  readonly context: RepoContext;
  /** Output of the test command on the unchanged code (before attempt 1), shortened. */
  readonly baselineOutput?: string | null;
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly feedback?: AttemptFeedback | null;
}

export const SYSTEM_PROMPT = [
  'You are a careful software engineer fixing a bug in a repository.',
  'You are given the bug report, the command that runs the tests, the repository file tree and the most relevant files.',
  'Make the smallest change that fixes the bug so that the test command passes. Do not change or delete tests unless',
  'the bug report says the tests are wrong.',
  '',
  'Answer with ONE unified diff, relative to the repository root, in a single fenced block that starts with ```diff',
  'and ends with ```. Use `--- a/<path>` and `+++ b/<path>` headers and correct `@@` hunks with a few lines of',
  'unchanged context copied exactly from the files shown. You may add a one-line explanation before the block.',
].join('\n');

/** Fence longer than any run of backticks in `text`, so file content cannot close it. */
function fenceFor(text: string): string {
  const longest = Math.max(2, ...(text.match(/`+/g) ?? []).map((m) => m.length));
  return '`'.repeat(longest + 1);
}

function block(text: string, lang = ''): string {
  const fence = fenceFor(text);
  return `${fence}${lang}\n${text.replace(/\n$/, '')}\n${fence}`;
}

function langOf(path: string): string {
  const ext = path.split('.').pop()?.toLowerCase() ?? '';
  return /^[a-z0-9]{1,10}$/.test(ext) && ext !== path.toLowerCase() ? ext : '';
}

/** The system and user messages of one attempt. */
export function buildMessages(input: PromptInput): ChatCompletionMessageParam[] {
  const parts: string[] = [];
  parts.push(`## Bug report\n${input.bugDescription.trim()}`);
  parts.push(`## Test command\n${block(input.testCommand)}`);
  if (input.baselineOutput) parts.push(`## Test output before any change\n${block(input.baselineOutput)}`);
  parts.push(`## Repository files\n${block(input.context.tree)}`);
  const files = input.context.files.map(
    (f) => `### ${f.path}${f.truncated ? ' (only the start of the file is shown)' : ''}\n${block(f.content, langOf(f.path))}`,
  );
  if (input.context.omittedFiles > 0) {
    files.push(`(${input.context.omittedFiles} less related files are not shown.)`);
  }
  parts.push(`## Relevant files\n${files.join('\n\n')}`);

  const fb = input.feedback;
  if (fb) {
    const header = `## Attempt ${input.attempt - 1} of ${input.maxAttempts} failed`;
    if (fb.kind === 'no_patch') {
      parts.push(`${header}\nYour previous answer contained no unified diff in a \`\`\`diff block. Answer with a \`\`\`diff block this time.`);
    } else if (fb.kind === 'patch_rejected') {
      parts.push(
        `${header}\nYour previous patch does not apply to the files shown (git apply said the following). ` +
          `Copy the context lines exactly from the files above.\n\nPrevious patch:\n${block(fb.patch, 'diff')}\n\ngit apply:\n${block(fb.error)}`,
      );
    } else {
      parts.push(
        `${header}\nYour previous patch applied, but the tests still fail. The code has been reset to the original; ` +
          `write a complete new patch against the files shown.\n\nPrevious patch:\n${block(fb.patch, 'diff')}\n\nTest output:\n${block(fb.testOutput)}`,
      );
    }
  }
  parts.push(`Attempt ${input.attempt} of ${input.maxAttempts}. Reply with the fix as a unified diff in a \`\`\`diff block.`);

  return [
    { role: 'system', content: SYSTEM_PROMPT },
    { role: 'user', content: parts.join('\n\n') },
  ];
}
