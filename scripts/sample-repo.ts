/**
 * Makes a git repository from the bundled sample (demo/sample-repo: two bugs, two failing tests
 * runnable with plain `node`) at the folder given, for a first task against the simulator:
 *
 *   npm run sample-repo -- /tmp/asa-sample-repo
 *
 * The sample inside this checkout cannot be submitted itself: the service never clones from the
 * repository it runs from. The commit is made with a fixed identity, so no git configuration is needed.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { MATH_BUG } from '../src/demo/demo-responder';
import { copyAsRepo } from '../src/demo/git-init';
import { SAMPLE_REPO_DIR } from '../src/demo/run-demo';

const USAGE = 'usage: npm run sample-repo -- <folder to create, e.g. /tmp/asa-sample-repo>';

async function main(): Promise<void> {
  let positionals: string[];
  try {
    ({ positionals } = parseArgs({ options: {}, strict: true, allowPositionals: true }));
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${USAGE}`);
  }
  if (positionals.length !== 1) throw new Error(USAGE);
  const dest = resolve(positionals[0]);
  if (existsSync(dest)) throw new Error(`${dest} already exists; name a folder to create`);
  await mkdir(dirname(dest), { recursive: true });
  await copyAsRepo(SAMPLE_REPO_DIR, dest);
  // Sandboxed test commands run as another user when the service runs as root: let it read the sources.
  await chmod(dest, 0o755);
  process.stdout.write(
    `sample repository (git, one commit; bugs in src/math.js and src/strings.js): ${dest}\n` +
      `submit it with: {"repo_url": "${dest}", "bug_description": "${MATH_BUG}", "test_command": "node test/math.test.js"}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
