/**
 * What the task sandbox adds to starting one command: `true` run through runSandboxedCommand,
 * as a task runs its test command, with TASK_SANDBOX=none and with bubblewrap (network off and
 * on), in one run, interleaved so both see the same machine load. Reports medians and ratios.
 *
 *   npx ts-node --transpile-only bench/sandbox-command.ts [runs per kind, default 40]
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSandbox } from '../src/modules/tasks/sandbox/create-sandbox';
import type { Sandbox } from '../src/modules/tasks/sandbox/sandbox';
import { runSandboxedCommand } from '../src/modules/tasks/agent/sandboxed-command';

const runs = Number(process.argv[2] ?? 40);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'asa-bench-sandbox-'));
  chmodSync(root, 0o711);
  const work = join(root, 'work');
  mkdirSync(work);
  const searchPath = process.env.PATH ?? '/usr/bin:/bin';
  const kinds: [string, Sandbox][] = [
    ['none', await createSandbox({ sandbox: 'none', sandboxNetwork: false, workspaceDir: root, executableSearchPath: searchPath })],
    ['bwrap', await createSandbox({ sandbox: 'bwrap', sandboxNetwork: false, workspaceDir: root, executableSearchPath: searchPath })],
    ['bwrap + network', await createSandbox({ sandbox: 'bwrap', sandboxNetwork: true, workspaceDir: root, executableSearchPath: searchPath })],
  ];
  for (const [, sandbox] of kinds) await sandbox.handOver(work);
  const times = new Map<string, number[]>(kinds.map(([name]) => [name, []]));
  try {
    for (let i = 0; i < runs + 3; i++) {
      for (const [name, sandbox] of kinds) {
        const r = await runSandboxedCommand('true', {
          sandbox,
          mounts: { readOnly: [root], writable: [work] },
          cwd: work,
          env: { PATH: '/usr/local/bin:/usr/bin:/bin' },
          timeoutMs: 15_000,
          killGraceMs: 500,
          maxOutputBytes: 1024,
        });
        if (!r.passed) throw new Error(`${name}: the command failed: ${r.output}`);
        if (i >= 3) times.get(name)!.push(r.durationMs); // the first rounds warm the page cache
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  const base = median(times.get('none')!);
  console.log(`one sandboxed \`true\`, median of ${runs} runs each (interleaved):`);
  for (const [name] of kinds) {
    const m = median(times.get(name)!);
    console.log(`  ${name.padEnd(16)} ${m.toFixed(1)} ms  (x${(m / base).toFixed(1)} of none, +${(m - base).toFixed(1)} ms)`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
