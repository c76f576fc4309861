import { basename, extname } from 'node:path';

export interface CandidateFile {
  /** Path relative to the repository root, with `/` separators. */
  readonly path: string;
  /** File text, or null when it is not sent to the model (binary, too large, a symlink). */
  readonly content: string | null;
}

export interface RankedFile extends CandidateFile {
  readonly score: number;
  /** Why the file ranked where it did (for logs and tests). */
  readonly reasons: readonly string[];
}

export interface RankingInput {
  readonly bugDescription: string;
  /** Output of the failing test run, when there is one. */
  readonly testOutput?: string | null;
}

const STOPWORDS = new Set(
  (
    'the and for with that this from when then than into have has had not but are was were will would should could ' +
    'can does did doing done its it’s their there them they you your our out all any some one two get got set use ' +
    'used uses using make makes made like just also only very more most less such each other what which who why how ' +
    'bug fix fixes fixed error errors wrong instead expected actual returns return returned value values test tests ' +
    'file files code function method line lines should must case cases work works working broken issue problem'
  ).split(' '),
);

/** Words worth matching: identifiers and their camelCase / snake_case parts, lower-cased. */
export function termsOf(text: string): Set<string> {
  const out = new Set<string>();
  for (const word of text.match(/[A-Za-z_$][A-Za-z0-9_$]{2,}/g) ?? []) {
    const lower = word.toLowerCase();
    if (!STOPWORDS.has(lower)) out.add(lower);
    const parts = word
      .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
      .split(/[\s_$]+/)
      .map((p) => p.toLowerCase())
      .filter((p) => p.length >= 3 && !STOPWORDS.has(p));
    if (parts.length > 1) parts.forEach((p) => out.add(p));
  }
  return out;
}

/**
 * Where `text` mentions `path`: as the whole relative path (also inside an absolute path or a
 * file:// URL of the checkout), or by its file name alone. Returns the kind of match.
 */
export function mentionOf(text: string, path: string): 'path' | 'name' | null {
  if (!text) return null;
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const boundaryBefore = '(?:^|[\\s/\\\\(\'"`:=,\\[])';
  const boundaryAfter = '(?=$|[\\s:)\'"`,;\\]]|\\.(?:\\s|$))';
  if (path.includes('/') && new RegExp(boundaryBefore + esc(path) + boundaryAfter, 'm').test(text)) return 'path';
  if (new RegExp(boundaryBefore + esc(basename(path)) + boundaryAfter, 'm').test(text)) {
    return path.includes('/') ? 'name' : 'path';
  }
  return null;
}

const TEST_FILE = /(^|\/)(tests?|__tests__|spec)\/|[._-](test|spec)\.[a-z0-9]+$|(^|\/)test_[^/]+$/i;

export function isTestFile(path: string): boolean {
  return TEST_FILE.test(path);
}

/** Module names a file imports (`require('./x')`, `import ... from './x'`, `from x import`, `import x`). */
export function importedNames(content: string): Set<string> {
  const out = new Set<string>();
  const add = (spec: string) => {
    // './lib/math.js' -> math; 'pkg.module' (Python) -> module
    const segment = spec.includes('/') || spec.startsWith('.') ? spec.split('/').pop()! : spec.split('.').pop()!;
    const name = spec.includes('/') || spec.startsWith('.') ? segment.replace(/\.[A-Za-z0-9]+$/, '') : segment;
    if (name && name !== '.' && name !== '..') out.add(name.toLowerCase());
  };
  for (const m of content.matchAll(/(?:require\(\s*|from\s+|import\s*\(\s*|import\s+)['"]([^'"]+)['"]/g)) add(m[1]);
  for (const m of content.matchAll(/^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w.]+))/gm)) add(m[1] ?? m[2]);
  return out;
}

function stemOf(path: string): string {
  const name = basename(path);
  return name.slice(0, name.length - extname(name).length).toLowerCase();
}

/**
 * Orders the repository's files by how related they are to the bug: files the failing test
 * output points at (stack frames, `file:line` references; test files among them weigh more),
 * files named in the description, files the referenced tests import, then files sharing the
 * description's identifiers (weighted by how rare the identifier is in the repository).
 */
export function rankFiles(files: readonly CandidateFile[], input: RankingInput): RankedFile[] {
  const description = input.bugDescription ?? '';
  const output = input.testOutput ?? '';
  const descTerms = termsOf(description);
  const outputTerms = termsOf(output);

  const fileTerms = files.map((f) => (f.content ? termsOf(f.content.slice(0, 200_000)) : new Set<string>()));
  const df = new Map<string, number>();
  for (const terms of fileTerms) for (const t of terms) if (descTerms.has(t) || outputTerms.has(t)) df.set(t, (df.get(t) ?? 0) + 1);
  const idf = (t: string) => Math.log((files.length + 1) / ((df.get(t) ?? 0) + 1)) + 1;

  const scored = files.map((f, i) => {
    let score = 0;
    const reasons: string[] = [];
    const inOutput = mentionOf(output, f.path);
    if (inOutput) {
      const pts = inOutput === 'path' ? 50 : 20;
      score += pts + (isTestFile(f.path) ? 15 : 0);
      reasons.push(`test output names it (${inOutput})`);
    }
    const inDescription = mentionOf(description, f.path);
    if (inDescription) {
      score += inDescription === 'path' ? 40 : 20;
      reasons.push(`description names it (${inDescription})`);
    } else if (descTerms.has(stemOf(f.path))) {
      score += 10;
      reasons.push('file name is a word of the description');
    }
    let overlap = 0;
    for (const t of fileTerms[i]) {
      if (descTerms.has(t)) overlap += 3 * idf(t);
      else if (outputTerms.has(t)) overlap += idf(t);
    }
    if (overlap > 0) {
      score += Math.min(30, overlap);
      reasons.push('shares identifiers with the description or test output');
    }
    return { ...f, score, reasons };
  });

  // Files the referenced tests import are where the fix usually goes.
  const imported = new Set<string>();
  for (const f of scored) {
    if (f.content && f.reasons.some((r) => r.startsWith('test output names it'))) {
      for (const name of importedNames(f.content)) imported.add(name);
    }
  }
  const ranked = scored.map((f) => {
    if (!imported.has(stemOf(f.path)) || !f.content) return f;
    return { ...f, score: f.score + 25, reasons: [...f.reasons, 'imported by a test the output names'] };
  });

  return ranked.sort((a, b) => b.score - a.score || a.path.length - b.path.length || a.path.localeCompare(b.path));
}
