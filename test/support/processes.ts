import { readdirSync, readFileSync } from 'node:fs';

/**
 * Pids of the processes on this machine whose command line is exactly `argv`, read from /proc as
 * `ps` would. Tests start sleeps with unlikely durations (`sleep 424201`) and look them up here,
 * from outside any sandbox, to see whether they outlived their task.
 */
export function pidsRunning(...argv: string[]): number[] {
  const want = argv.join('\0');
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0$/, '');
      const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${name}/status`, 'utf8'))?.[1];
      if (cmdline === want && state !== 'Z') pids.push(Number(name));
    } catch {
      // Ended while being read.
    }
  }
  return pids;
}
