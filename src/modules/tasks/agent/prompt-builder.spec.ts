import { extractDiff } from './diff-extractor';
import { buildMessages, PromptInput } from './prompt-builder';

const base: PromptInput = {
  bugDescription: 'add() subtracts',
  testCommand: 'npm test',
  context: {
    tree: 'README.md\nsrc/add.js',
    files: [
      { path: 'README.md', content: 'Run:\n```sh\nnpm test\n```\n', truncated: false },
      { path: 'src/add.js', content: 'const add = (a, b) => a - b;\n', truncated: true },
    ],
    omittedFiles: 2,
    tokens: 50,
  },
  baselineOutput: 'AssertionError: 5 !== -1',
  attempt: 1,
  maxAttempts: 3,
};

describe('buildMessages', () => {
  it('puts the instructions in the system message and the bug, command, output, tree and files in the user message', () => {
    const [system, user] = buildMessages(base);
    expect(system.role).toBe('system');
    expect(system.content).toContain('```diff');
    const text = user.content as string;
    for (const part of ['## Bug report\nadd() subtracts', 'npm test', 'AssertionError: 5 !== -1', 'src/add.js (only the start of the file is shown)', '2 less related files are not shown', 'Attempt 1 of 3']) {
      expect(text).toContain(part);
    }
    expect(text).not.toContain('failed');
  });

  it('fences file content with more backticks than it contains, so a file cannot end its block', () => {
    const text = buildMessages(base)[1].content as string;
    expect(text).toContain('````md\nRun:\n```sh\nnpm test\n```\n````');
    // ...and a model echoing the prompt back does not turn the README fence into a diff.
    expect(extractDiff(text)).toBeNull();
  });

  it('feeds back the previous patch with the test output, or with the git apply error, or asks for a diff', () => {
    const patch = '--- a/src/add.js\n+++ b/src/add.js\n@@ -1 +1 @@\n-x\n+y\n';
    const failed = buildMessages({ ...base, attempt: 2, feedback: { kind: 'tests_failed', patch, testOutput: 'still 5 !== 4' } })[1].content as string;
    expect(failed).toContain('## Attempt 1 of 3 failed');
    expect(failed).toContain('tests still fail');
    expect(failed).toContain(patch.trim());
    expect(failed).toContain('still 5 !== 4');
    const rejected = buildMessages({ ...base, attempt: 3, feedback: { kind: 'patch_rejected', patch, error: 'error: patch failed: src/add.js:1' } })[1].content as string;
    expect(rejected).toContain('## Attempt 2 of 3 failed');
    expect(rejected).toContain('does not apply');
    expect(rejected).toContain('error: patch failed: src/add.js:1');
    const none = buildMessages({ ...base, attempt: 2, feedback: { kind: 'no_patch', reply: 'hmm' } })[1].content as string;
    expect(none).toContain('contained no unified diff');
  });
});
