import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureSdkBuilt } from './support/sdk-build';
import { PROJECT_ROOT } from './support/service-process';

const TSC = join(PROJECT_ROOT, 'node_modules/typescript/bin/tsc');

/**
 * A plugin in its own package, outside the code base, typed against the SDK as npm would give it:
 * `asa-backend` linked into its node_modules (as `npm link` or a file: dependency does), resolved
 * through package.json `exports` to the declarations built by `npm run build`.
 */
describe('asa-backend/sdk as a third-party plugin package sees it', () => {
  let dir: string;
  beforeAll(() => {
    ensureSdkBuilt();
    dir = mkdtempSync(join(tmpdir(), 'asa-plugin-package-'));
    mkdirSync(join(dir, 'node_modules/@types'), { recursive: true });
    symlinkSync(PROJECT_ROOT, join(dir, 'node_modules/asa-backend'), 'dir');
    // What the plugin's own devDependencies would hold: Node's types (the SDK's AbortSignal).
    symlinkSync(join(PROJECT_ROOT, 'node_modules/@types/node'), join(dir, 'node_modules/@types/node'), 'dir');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'asa-plugin-warehouse', version: '1.0.0', private: true }));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        // node16 resolution honours package.json `exports`, as current TypeScript setups do.
        compilerOptions: { module: 'node16', moduleResolution: 'node16', target: 'ES2022', strict: true, outDir: 'out', skipLibCheck: false, types: ['node'] },
        include: ['src/**/*.ts'],
      }),
    );
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const tsc = () => {
    try {
      execFileSync(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: dir, stdio: 'pipe', timeout: 120_000 });
      return { ok: true, output: '' };
    } catch (err) {
      return { ok: false, output: String((err as { stdout?: Buffer }).stdout ?? '') };
    }
  };
  const source = (files: Record<string, string>) => {
    rmSync(join(dir, 'src'), { recursive: true, force: true });
    rmSync(join(dir, 'out'), { recursive: true, force: true });
    mkdirSync(join(dir, 'src'));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, 'src', name), text);
  };

  it('typechecks a sink, a notifier, a destination and an agent against the built declarations, and runs against the built JS', () => {
    source({
      'plugin.ts': `
import type { AlertNotifier, ExportDestination, PluginOptions, TaskAgent, UsageRecord, UsageSink, UsageSinkPluginModule } from 'asa-backend/sdk';
import { SDK_API_VERSION, serializeUsageRecord } from 'asa-backend/sdk';

export const apiVersion: string = SDK_API_VERSION;
export const lines: string[] = [];

export function createUsageSink(options: PluginOptions): UsageSink {
  return {
    name: String(options.name ?? 'warehouse'),
    policy: { onFailure: 'retry', maxBatchSize: 100 },
    async write(records: readonly UsageRecord[]) {
      for (const r of records) lines.push(JSON.stringify(serializeUsageRecord(r)));
    },
  };
}
// The module as a whole has the documented shape.
const _module: UsageSinkPluginModule = { apiVersion, createUsageSink };
void _module;

export const notifier: AlertNotifier = { name: 'pager', async send(alert) { lines.push(alert.ruleId + ':' + (alert.spendUsd ?? '')); } };
export const destination: ExportDestination = { name: 'bucket', async deliver(file) { return { location: 's3://b/' + file.fileName, detail: { bytes: file.bytes } }; } };
export const agent: TaskAgent = {
  name: 'echo',
  async run(ctx) {
    await ctx.progress({ stage: 'model' });
    return { outcome: 'failed', reason: 'no_patch', attempts: 0, detail: ctx.task.repoUrl };
  },
};
`,
    });
    const res = tsc();
    expect(res.output).toBe('');
    expect(res.ok).toBe(true);
    // The emitted plugin runs against the SDK's built JavaScript (require('asa-backend/sdk')).
    const out = execFileSync(
      process.execPath,
      [
        '-e',
        `const p = require('./out/plugin.js');
         const sink = p.createUsageSink({ name: 'w1' });
         sink.write([{ id: 'r1', createdAtMs: 0, taskId: null, userId: 'u', traceId: null, provider: 'openai', operation: 'chat',
           requestedModel: 'm', responseModel: null, inputTokens: 1, cachedInputTokens: 0, cacheWriteTokens: 0, outputTokens: 2,
           reasoningTokens: 0, totalTokens: 3, costNanos: 1500, unpriced: false, priceSource: null, latencyMs: 5,
           timeToFirstTokenMs: null, streamed: false, status: 'success', errorType: null, estimated: false }])
           .then(() => console.log(JSON.stringify({ name: sink.name, apiVersion: p.apiVersion, line: JSON.parse(p.lines[0]) })));`,
      ],
      { cwd: dir, encoding: 'utf8' },
    );
    expect(JSON.parse(out)).toEqual({
      name: 'w1',
      apiVersion: '1.1.0', // the SDK_API_VERSION it was built against
      line: expect.objectContaining({ id: 'r1', created_at: '1970-01-01T00:00:00.000Z', user_id: 'u', cost_usd: '0.000001500', total_tokens: 3 }),
    });
  });

  it('rejects a plugin that does not implement the interface, naming what is wrong', () => {
    source({
      'bad.ts': `
import type { UsageSink, AlertNotifier } from 'asa-backend/sdk';
export const sink: UsageSink = { name: 'w', write: (records) => records.length };
export const notifier: AlertNotifier = { name: 'n' };
`,
    });
    const res = tsc();
    expect(res.ok).toBe(false);
    expect(res.output).toMatch(/bad\.ts\(3,\d+\): error TS2322: .*'number' is not assignable to type 'Promise<void \| UsageSinkWriteResult>'/s);
    expect(res.output).toMatch(/bad\.ts\(4,\d+\): error TS2741: Property 'send' is missing/);
  });

  it('only exposes the SDK: the service\'s internals are not importable through the package', () => {
    source({ 'internal.ts': `import { AppModule } from 'asa-backend/dist/app.module';\nexport const m = AppModule;\n` });
    const res = tsc();
    expect(res.ok).toBe(false);
    expect(res.output).toMatch(/TS2307: Cannot find module 'asa-backend\/dist\/app\.module'/);
  });
});
