import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A scratch folder under the OS temp folder that the task sandbox's user can pass through: when
 * the tests run as root, sandboxed commands run as uid 65534, and a task workspace below a
 * mkdtemp folder (mode 0700) would be out of its reach (the service's start-up probe says so).
 * 0711 lets it traverse the folder without listing it.
 */
export function sandboxReachableTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o711);
  return dir;
}
