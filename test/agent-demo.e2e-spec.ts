import { existsSync } from 'node:fs';
import { DEMO_PREFIX } from '../src/demo/demo-report';
import { runDemo, SAMPLE_REPO_DIR } from '../src/demo/run-demo';

/**
 * `npm run demo` as a user runs it (in-process here): the real AppModule on a temp SQLite file,
 * the simulator with the demo's responder, the bundled sample repository, tasks through HTTP,
 * the usage report from the usage API.
 */
describe('offline demo (npm run demo)', () => {
  it('fixes both sample bugs (one with a retry), stops the tiny budget, and reports usage; every line says SIMULATED', async () => {
    const lines: string[] = [];
    const result = await runDemo({ port: 0, print: (l) => lines.push(l) });

    expect(result.problems).toEqual([]);
    expect(result.ok).toBe(true);
    const [average, slugify, budget] = result.rows;
    expect(average).toMatchObject({ label: 'fix-average', status: 'succeeded', attempts: 1, calls: 1 });
    expect(slugify).toMatchObject({ label: 'fix-slugify', status: 'succeeded', attempts: 2, calls: 2 });
    expect(budget).toMatchObject({ label: 'tiny-budget', status: 'failed', failureReason: 'budget_exceeded', calls: 0, costUsd: 0 });
    for (const row of [average, slugify]) {
      expect(row.tokens).toBeGreaterThan(100);
      expect(row.costUsd).toBeGreaterThan(0);
    }
    expect(result.overall.requests).toBe(3);
    expect(result.overall.tokens).toBe(average.tokens + slugify.tokens);
    expect(result.overall.costUsd).toBeCloseTo(average.costUsd + slugify.costUsd, 9);

    expect(lines.length).toBeGreaterThan(20);
    for (const line of lines) expect(line.startsWith(DEMO_PREFIX), line).toBe(true);
    const text = lines.join('\n');
    expect(text).toContain('The LLM is SIMULATED');
    expect(text).toContain('+  return sum(values) / values.length;');
    expect(text).toMatch(/fix-slugify\s+succeeded\s+2\s+2\s+\d+\s+\$0\.\d{6}/);
    expect(text).toContain('demo finished as expected');
    // The bundled sample stays as shipped (the demo works on a copy).
    expect(existsSync(`${SAMPLE_REPO_DIR}/.git`)).toBe(false);
  });
});
