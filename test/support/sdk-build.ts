import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from './service-process';

export const SDK_DIST = join(PROJECT_ROOT, 'dist/sdk');
const SDK_SRC = join(PROJECT_ROOT, 'src/plugins/sdk');
const STAMP = join(SDK_DIST, '.built');

/**
 * Builds the plugin SDK as `npm run build` does (tsc -p tsconfig.sdk.json, to dist/sdk), which is
 * what `asa-backend/sdk` resolves to (package.json `exports`), unless it is newer than its sources.
 * Built in a scratch folder and moved in file by file (a rename replaces a file at once), so a test
 * file loading the SDK while another builds it never reads half a file.
 */
export function ensureSdkBuilt(): void {
  const newest = Math.max(...readdirSync(SDK_SRC).map((f) => statSync(join(SDK_SRC, f)).mtimeMs), statSync(join(PROJECT_ROOT, 'tsconfig.sdk.json')).mtimeMs);
  if (existsSync(STAMP) && statSync(STAMP).mtimeMs >= newest) return;
  mkdirSync(SDK_DIST, { recursive: true });
  const scratch = mkdtempSync(join(SDK_DIST, '.build-'));
  try {
    execFileSync(process.execPath, [join(PROJECT_ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.sdk.json', '--outDir', scratch], {
      cwd: PROJECT_ROOT,
      stdio: 'pipe',
      timeout: 120_000,
    });
    for (const f of readdirSync(scratch)) renameSync(join(scratch, f), join(SDK_DIST, f));
    writeFileSync(STAMP, '');
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
