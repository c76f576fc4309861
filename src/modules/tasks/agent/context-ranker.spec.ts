import { ContextBuilder } from './context-builder';
import { importedNames, isTestFile, mentionOf, rankFiles, termsOf } from './context-ranker';
import { TokenCounter } from './token-counter';

const FILES = [
  { path: 'README.md', content: '# Calculator\nA tiny library.\n' },
  { path: 'src/math.js', content: 'function sum(v){}\nfunction average(values) { return sum(values) / (values.length - 1); }\nmodule.exports = { sum, average };\n' },
  { path: 'src/strings.js', content: 'function slugify(title) { return title.replace(" ", "-"); }\nmodule.exports = { slugify };\n' },
  { path: 'src/format.js', content: 'function formatNumber(n) { return n.toFixed(2); }\n' },
  { path: 'test/math.test.js', content: "const { average } = require('../src/math');\nassert.equal(average([2,4,6]), 4);\n" },
  { path: 'test/strings.test.js', content: "const { slugify } = require('../src/strings.js');\n" },
];

const NODE_FAILURE = [
  'AssertionError [ERR_ASSERTION]: average of 2, 4, 6 is 4',
  '    at Object.<anonymous> (/tmp/asa-task-1-abc/repo/test/math.test.js:2:8)',
  '    at Module._compile (node:internal/modules/cjs/loader:1521:14)',
].join('\n');

describe('context ranking', () => {
  it('splits identifiers into searchable terms and drops filler words', () => {
    const t = termsOf('The computeAverage function in stats_utils returns the wrong value');
    expect(t).toContain('computeaverage');
    expect(t).toContain('average');
    expect(t).toContain('stats_utils');
    expect(t).toContain('utils');
    expect(t).not.toContain('the');
    expect(t).not.toContain('returns');
  });

  it('finds a file named by relative path (also inside an absolute path) or by its name', () => {
    expect(mentionOf(NODE_FAILURE, 'test/math.test.js')).toBe('path');
    expect(mentionOf('see math.test.js:2', 'test/math.test.js')).toBe('name');
    expect(mentionOf('the average helper is wrong', 'src/math.js')).toBeNull();
    expect(mentionOf('look at src/mathematics.js', 'src/math.js')).toBeNull();
  });

  it('knows test files and what a file imports', () => {
    expect(isTestFile('test/math.test.js')).toBe(true);
    expect(isTestFile('tests/test_math.py')).toBe(true);
    expect(isTestFile('src/math.js')).toBe(false);
    expect([...importedNames("const a = require('../src/math');\nimport b from './lib/strings.js';\nfrom pkg.stats import mean")]).toEqual(
      expect.arrayContaining(['math', 'strings', 'stats']),
    );
  });

  it('ranks the failing test and the module it imports first for a test failure', () => {
    const ranked = rankFiles(FILES, { bugDescription: 'The result is off for some inputs', testOutput: NODE_FAILURE });
    expect(ranked.slice(0, 2).map((f) => f.path).sort()).toEqual(['src/math.js', 'test/math.test.js']);
    expect(ranked[0].reasons.join(' ')).toMatch(/test output|imported/);
    expect(ranked.find((f) => f.path === 'src/math.js')!.reasons).toContain('imported by a test the output names');
  });

  it('ranks by the description when there is no test output', () => {
    const ranked = rankFiles(FILES, { bugDescription: 'slugify only replaces the first space of a title' });
    expect(ranked[0].path).toBe('src/strings.js');
    expect(ranked[ranked.length - 1].score).toBe(0);
  });

  it('a path named in the description beats shared words', () => {
    const ranked = rankFiles(FILES, { bugDescription: 'src/format.js: average numbers are formatted with two decimals' });
    expect(ranked[0].path).toBe('src/format.js');
  });
});

describe('ContextBuilder', () => {
  const tokens = new TokenCounter();
  const builder = new ContextBuilder(tokens);

  it('sends whole files when they fit, most related first, and lists every file in the tree', () => {
    const ctx = builder.select(FILES, { bugDescription: 'average is wrong', testOutput: NODE_FAILURE }, { maxTokens: 5_000, maxFileBytes: 100_000 });
    expect(ctx.files.map((f) => f.path).slice(0, 2).sort()).toEqual(['src/math.js', 'test/math.test.js']);
    expect(ctx.files).toHaveLength(FILES.length);
    expect(ctx.files.every((f) => !f.truncated)).toBe(true);
    for (const f of FILES) expect(ctx.tree).toContain(f.path);
    expect(ctx.tokens).toBeLessThanOrEqual(5_000);
  });

  it('stays within the token budget: cuts the first file that does not fit, leaves out the rest', () => {
    const big = { path: 'src/big.js', content: Array.from({ length: 3000 }, (_, i) => `const average${i} = ${i};`).join('\n') };
    const files = [...FILES, big];
    const budget = { maxTokens: 1_500, maxFileBytes: 1_000_000 };
    const ctx = builder.select(files, { bugDescription: 'average of src/big.js is wrong' }, budget);
    expect(ctx.files[0].path).toBe('src/big.js');
    expect(ctx.files[0].truncated).toBe(true);
    expect(ctx.tokens).toBeLessThanOrEqual(budget.maxTokens);
    const counted = tokens.count(ctx.tree) + ctx.files.reduce((n, f) => n + tokens.count(f.content), 0);
    expect(counted).toBeLessThanOrEqual(budget.maxTokens);
    expect(ctx.omittedFiles).toBeGreaterThan(0);
  });

  it('shortens a huge file tree to its share of the budget', () => {
    const many = Array.from({ length: 5000 }, (_, i) => ({ path: `pkg/module${i}/index.js`, content: null }));
    const ctx = builder.select(many, { bugDescription: 'x' }, { maxTokens: 2_000, maxFileBytes: 1_000 });
    expect(tokens.count(ctx.tree)).toBeLessThanOrEqual(300);
    expect(ctx.tree).toMatch(/\.\.\. and \d+ more files$/);
  });
});
