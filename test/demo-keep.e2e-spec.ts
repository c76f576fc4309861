import { existsSync } from 'node:fs';
import { portIsFree, runNpmScript } from './support/npm-script';
import { isFinal } from './support/tasks';

/**
 * `npm run demo -- --keep` as a user runs it: the demo's report, then its service and simulator stay
 * up with the demo's data and the URLs to explore are printed; SIGTERM to npm ends both and removes
 * the data.
 */
describe('npm run demo -- --keep', () => {
  it('keeps the service running with the demo data, prints working URLs, and stops on SIGTERM', async () => {
    const demo = runNpmScript('demo', ['--keep']);
    let base = '';
    let simPort = 0;
    let scratch = '';
    try {
      await demo.waitFor(/stop with Ctrl-C \(or SIGTERM\).*\n/, 150_000);
      const out = demo.output();
      expect(out).toContain('demo finished as expected');
      base = /API docs \(try every endpoint\):\s+(http:\/\/127\.0\.0\.1:\d+)\/docs/.exec(out)![1];
      simPort = Number(/SIMULATED model at http:\/\/127\.0\.0\.1:(\d+)\/v1/.exec(out)![1]);
      scratch = /the demo's data \(([^)]+)\) go away/.exec(out)![1];
      expect(existsSync(scratch)).toBe(true);

      // Every URL printed answers, with the demo's data.
      const urls = [...out.matchAll(/^\[SIMULATED LLM\] {2}[^:]+:\s+(http:\/\/\S+)$/gm)].map((m) => m[1]);
      expect(urls.length).toBeGreaterThanOrEqual(7);
      // The dashboard's URL only when it is served; otherwise how to get it.
      expect(out).toMatch(/dashboard: +(http:\/\/\S+\/dashboard$|not served by the demo, which runs from the sources; `npm run build`, then `npm start` serves it at \/dashboard)/m);
      for (const url of urls) expect((await fetch(url)).status, url).toBe(200);
      const overall = (await (await fetch(`${base}/api/v1/usage/overall?days=1`)).json()) as { total_requests: number };
      expect(overall.total_requests).toBe(3);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      expect(metrics).toMatch(/^llm_requests_total\{model="gpt-4o-mini",provider="openai",status="success"\} 3$/m);
      const tasks = (await (await fetch(`${base}/api/v1/tasks`)).json()) as { tasks: { status: string }[] };
      expect(tasks.tasks).toHaveLength(3);

      // The printed submit command works against the kept service and simulator.
      const curl = /curl -X POST (\S+) -H 'Content-Type: application\/json' -d '(.+)'$/m.exec(out)!;
      const submitted = await fetch(curl[1], { method: 'POST', headers: { 'content-type': 'application/json' }, body: curl[2] });
      expect(submitted.status).toBe(202);
      const { task_id } = (await submitted.json()) as { task_id: string };
      let task: { status: string } = { status: 'queued' };
      for (let i = 0; i < 300 && !isFinal(task); i++) {
        await new Promise((r) => setTimeout(r, 200));
        task = (await (await fetch(`${base}/api/v1/task/${task_id}`)).json()) as { status: string };
      }
      expect(task.status).toBe('succeeded');
    } finally {
      const exit = await demo.stop('SIGTERM');
      expect(exit.code, demo.output()).toBe(0);
    }
    expect(await portIsFree(Number(new URL(base).port))).toBe(true);
    expect(await portIsFree(simPort)).toBe(true);
    expect(existsSync(scratch)).toBe(false);
  }, 240_000);
});
