import { extractDiff } from './diff-extractor';

const HUNK = ['--- a/src/math.js', '+++ b/src/math.js', '@@ -1,3 +1,3 @@', ' a', '-b', '+c', ' d'].join('\n');

describe('extractDiff', () => {
  it('takes the content of a ```diff block and ends it with a newline', () => {
    const reply = `Here is the fix:\n\n\`\`\`diff\n${HUNK}\n\`\`\`\n\nThis divides by the length.`;
    expect(extractDiff(reply)).toBe(`${HUNK}\n`);
  });

  it('accepts ```patch and ~~~diff fences, CRLF line ends and a language tag with extras', () => {
    expect(extractDiff(`\`\`\`patch\n${HUNK}\n\`\`\``)).toBe(`${HUNK}\n`);
    expect(extractDiff(`~~~diff\n${HUNK}\n~~~`)).toBe(`${HUNK}\n`);
    expect(extractDiff(`\`\`\`diff title="fix"\r\n${HUNK.replace(/\n/g, '\r\n')}\r\n\`\`\`\r\n`)).toBe(`${HUNK}\n`);
  });

  it('runs a block to its last closing fence, so a fence inside a patched Markdown file does not cut it', () => {
    const md = ['--- a/README.md', '+++ b/README.md', '@@ -1,4 +1,4 @@', ' ```sh', '-npm tset', '+npm test', ' ```'].join('\n');
    const reply = `\`\`\`diff\n${md}\n\`\`\`\nDone.`;
    expect(extractDiff(reply)).toBe(`${md}\n`);
  });

  it('joins several diff blocks (one per file) and ignores non-diff blocks', () => {
    const other = HUNK.replace(/math/g, 'strings');
    const reply = `First:\n\`\`\`diff\n${HUNK}\n\`\`\`\nThen run:\n\`\`\`sh\nnode test.js\n\`\`\`\nSecond:\n\`\`\`diff\n${other}\n\`\`\``;
    const diff = extractDiff(reply)!;
    expect(diff).toContain('+++ b/src/math.js');
    expect(diff).toContain('+++ b/src/strings.js');
    expect(diff).not.toContain('node test.js');
  });

  it('tolerates an unterminated block (a reply cut off at the end)', () => {
    expect(extractDiff(`\`\`\`diff\n${HUNK}\n`)).toBe(`${HUNK}\n`);
  });

  it('accepts a bare diff without a fence', () => {
    expect(extractDiff(`The fix:\n${HUNK}\n\nThat is all.`)).toBe(`${HUNK}\n`);
    expect(extractDiff(`diff --git a/x b/x\n${HUNK}`)).toBe(`diff --git a/x b/x\n${HUNK}\n`);
  });

  it('accepts a diff in a fence without a language when no block is labelled diff', () => {
    expect(extractDiff(`Fix:\n\`\`\`\n${HUNK}\n\`\`\``)).toBe(`${HUNK}\n`);
  });

  it('returns null when there is no diff', () => {
    expect(extractDiff(null)).toBeNull();
    expect(extractDiff('')).toBeNull();
    expect(extractDiff('I cannot fix this without more information.')).toBeNull();
    expect(extractDiff('```diff\nthis is not a diff\n```')).toBeNull();
    expect(extractDiff('```js\nconst a = 1;\n```')).toBeNull();
  });
});
