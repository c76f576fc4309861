/** A fence opens at the start of a line; inside a diff every line starts with ' ', '+' or '-', so never matches. */
const OPEN_FENCE = /^(`{3,}|~{3,})\s*([\w+-]*)[^\n]*$/;
const DIFF_LANG = /^(diff|patch|udiff)$/i;

/**
 * Pulls the unified diff out of a model's reply: the content of its ```diff (or ```patch)
 * fenced blocks, several blocks (one per file) joined, other blocks (```sh) skipped. A block
 * ends at the first fence at the start of a line, so a fence inside the diff itself (a patched
 * Markdown file: ` ```sh` as a context line) does not cut it short; an unterminated block runs to
 * the end of the reply. Failing those, a plain ``` block holding a diff, or a bare diff, is accepted.
 * Returns null when the reply holds nothing that looks like a unified diff.
 */
export function extractDiff(reply: string | null | undefined): string | null {
  if (!reply) return null;
  const lines = reply.replace(/\r\n/g, '\n').split('\n');

  const blocks: string[] = [];
  const unlabelled: string[] = [];
  let sawFence = false;
  for (let i = 0; i < lines.length; i++) {
    const open = OPEN_FENCE.exec(lines[i]);
    if (!open) continue;
    sawFence = true;
    const marker = open[1];
    let end = i + 1;
    while (end < lines.length && !isClosing(lines[end], marker)) end++;
    const body = lines.slice(i + 1, end).join('\n');
    if (DIFF_LANG.test(open[2])) blocks.push(body);
    else if (open[2] === '') unlabelled.push(body);
    i = end;
  }

  // Labelled blocks first; else a plain ``` block that holds a diff; else a diff with no fence at all.
  const source = blocks.length > 0 ? blocks : sawFence ? unlabelled : [bareDiff(lines)];
  const candidates = source.filter(
    (d): d is string => d !== null && looksLikeDiff(d),
  );
  if (candidates.length === 0) return null;
  return normalize(candidates.join('\n'));
}

function isClosing(line: string, marker: string): boolean {
  const t = line.trimEnd();
  return t.length >= marker.length && t === marker[0].repeat(t.length);
}

function looksLikeDiff(text: string): boolean {
  return /^@@ /m.test(text) && (/^\+\+\+ /m.test(text) || /^diff --git /m.test(text));
}

/** A diff written without a fence: from the first `diff --git`/`--- ` header to the last hunk line. */
function bareDiff(lines: string[]): string | null {
  const start = lines.findIndex((l, i) => l.startsWith('diff --git ') || (l.startsWith('--- ') && lines[i + 1]?.startsWith('+++ ')));
  if (start < 0) return null;
  let end = start;
  for (let i = start; i < lines.length; i++) {
    if (/^([ +\-@\\]|diff --git |index |new file mode |deleted file mode |similarity |rename |old mode |new mode )/.test(lines[i]) || lines[i] === '') end = i;
    else break;
  }
  const text = lines.slice(start, end + 1).join('\n');
  return looksLikeDiff(text) ? text : null;
}

function normalize(diff: string): string {
  // git apply needs the final newline; trailing blank lines after the last hunk are noise.
  return diff.replace(/\n+$/, '') + '\n';
}
