import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { MATH_BUG, MATH_FIX } from '../src/demo/demo-responder';
import { runNpmScript, portIsFree } from './support/npm-script';
import { freePort, PROJECT_ROOT } from './support/service-process';

/** `npm run simulator` as a user starts it: the npm process, its options, and SIGTERM to npm. */
describe('npm run simulator', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'asa-sim-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const client = (baseURL: string) => new OpenAI({ apiKey: 'sim', baseURL, maxRetries: 0 });
  const ask = async (baseURL: string, ...contents: string[]) =>
    (await client(baseURL).chat.completions.create({ model: 'gpt-4o-mini', messages: contents.map((content) => ({ role: 'user' as const, content })) }))
      .choices[0].message.content;

  it('answers with the built-in script by default (a fix for the sample repository), and SIGTERM to npm frees the port', async () => {
    const port = await freePort();
    const sim = runNpmScript('simulator', ['--port', String(port)]);
    try {
      const [, baseUrl] = await sim.waitFor(/OPENAI_BASE_URL=(\S+)/);
      expect(baseUrl).toBe(`http://127.0.0.1:${port}/v1`);
      expect(sim.output()).toContain('the built-in script (fixes for demo/sample-repo)');
      // The agent's prompt has a "## Bug report" section; the built-in script answers it with a diff.
      const reply = await ask(baseUrl, `## Bug report\n${MATH_BUG}\n\n## Files\nsrc/math.js`);
      expect(reply).toContain(MATH_FIX);
      expect(await ask(baseUrl, 'Fix the authentication bug')).toMatch(/only knows the bundled sample repository/);
      expect(await portIsFree(port)).toBe(false);
    } finally {
      // The signal goes to npm, as from a process manager: the simulator itself must stop with it.
      const exit = await sim.stop('SIGTERM');
      expect(exit.code === 0 || exit.signal === 'SIGTERM', JSON.stringify(exit)).toBe(true);
    }
    expect(await portIsFree(port)).toBe(true);
  }, 90_000);

  it('--script: the first rule whose pattern matches the prompt, else the fallback (the example script)', async () => {
    const port = await freePort();
    const sim = runNpmScript('simulator', ['--port', String(port), '--script', join(PROJECT_ROOT, 'examples/simulator-script.json')]);
    try {
      const [, baseUrl] = await sim.waitFor(/OPENAI_BASE_URL=(\S+)/);
      expect(sim.output()).toMatch(/examples\/simulator-script\.json \(2 rules\)/);
      // The example's first rule is the sample repository's average() fix, diff for diff.
      expect(await ask(baseUrl, `## Bug report\n${MATH_BUG}`)).toContain(MATH_FIX.replace(/\n$/, ''));
      expect(await ask(baseUrl, 'HELLO simulator')).toBe('[SIMULATED LLM] Hello! I only know the scripted answers.');
      expect(await ask(baseUrl, 'anything else')).toBe('[SIMULATED LLM] This script has no answer for that prompt.');
    } finally {
      await sim.stop('SIGTERM');
    }
    expect(await portIsFree(port)).toBe(true);
  }, 90_000);

  it('--reply: one fixed answer to every chat', async () => {
    const port = await freePort();
    const sim = runNpmScript('simulator', ['--port', String(port), '--reply', 'always this']);
    try {
      const [, baseUrl] = await sim.waitFor(/OPENAI_BASE_URL=(\S+)/);
      expect(await ask(baseUrl, 'one')).toBe('always this');
      expect(await ask(baseUrl, `## Bug report\n${MATH_BUG}`)).toBe('always this');
    } finally {
      await sim.stop('SIGTERM');
    }
  }, 90_000);

  it('refuses a bad script with one plain line naming the file and the rule, and exits 1', async () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ rules: [{ pattern: '(', reply: 'x' }] }));
    const sim = runNpmScript('simulator', ['--port', String(await freePort()), '--script', file]);
    const exit = await sim.exited;
    expect(exit.code).toBe(1);
    expect(sim.output().trim()).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: rules\\[0\\]\\.pattern is not a valid regular expression`));
    expect(sim.output()).not.toMatch(/^\s+at /m);
  }, 60_000);
});
