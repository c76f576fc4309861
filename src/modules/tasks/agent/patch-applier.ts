import { GitCommandError } from './git';
import { Workspace } from './workspace';

export type ApplyResult = { readonly applied: true } | { readonly applied: false; readonly error: string };

/**
 * Applies a model's diff to the checkout with `git apply`, after checking it applies cleanly.
 * `--recount` tolerates the wrong hunk line counts models often write. A diff without `a/`,`b/`
 * prefixes is retried with `-p0`.
 */
export class PatchApplier {
  async apply(ws: Workspace, patch: string, name: string, signal?: AbortSignal): Promise<ApplyResult> {
    const file = await ws.writeScratchFile(name, patch);
    const strips = hasPrefixes(patch) ? ['-p1'] : ['-p1', '-p0'];
    let lastError = '';
    for (const strip of strips) {
      const base = ['apply', '--whitespace=nowarn', '--recount', strip];
      try {
        await ws.git([...base, '--check', file], signal);
      } catch (err) {
        if (!(err instanceof GitCommandError) || err.aborted) throw err;
        lastError = err.stderr.trim();
        continue;
      }
      await ws.git([...base, file], signal);
      return { applied: true };
    }
    return { applied: false, error: relativize(lastError, file) };
  }
}

function hasPrefixes(patch: string): boolean {
  return /^(\+\+\+ b\/|--- a\/|diff --git a\/)/m.test(patch);
}

/** git names the patch file in its errors; the model knows it as "your patch". */
function relativize(error: string, file: string): string {
  return (error || 'git apply rejected the patch').split(file).join('patch');
}
