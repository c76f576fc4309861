import { lstat, readFile, realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { CandidateFile, rankFiles, RankingInput } from './context-ranker';
import { TokenCounter } from './token-counter';

export interface ContextBudget {
  /** Tokens for the file tree and the files together. */
  readonly maxTokens: number;
  /** Files larger than this are listed in the tree but never sent. */
  readonly maxFileBytes: number;
}

export interface ContextFile {
  readonly path: string;
  readonly content: string;
  /** Only the start of the file fits in the budget. */
  readonly truncated: boolean;
}

export interface RepoContext {
  /** One path per line (possibly shortened). */
  readonly tree: string;
  readonly files: readonly ContextFile[];
  /** Files with content that did not fit in the budget. */
  readonly omittedFiles: number;
  readonly tokens: number;
}

/** Never worth their tokens: generated, vendored or lock files. */
const SKIP_CONTENT = /(^|\/)(node_modules|vendor|dist|build|\.git)\/|(^|\/)(package-lock\.json|yarn\.lock|pnpm-lock\.yaml|poetry\.lock|Cargo\.lock|composer\.lock|go\.sum)$|\.(min\.js|map|lock|svg|png|jpe?g|gif|ico|pdf|zip|gz|tgz|jar|woff2?|ttf|eot|mp[34]|wasm|so|dylib|dll|exe|bin|class|pyc)$/i;

/** Share of the budget the file tree may take. */
const TREE_SHARE = 0.15;
/** A file is only sent cut short when at least this many tokens of it fit. */
const MIN_PARTIAL_TOKENS = 200;
/** Files read to rank them, at most (the rest are only listed in the tree). */
const MAX_FILES_READ = 20_000;
const READ_CONCURRENCY = 16;
/** Files considered for the budget at most (ranking is cheap, counting tokens is not). */
const MAX_FILES_CONSIDERED = 300;

/**
 * Chooses what the model sees of the repository: the file tree, then whole files in order of
 * relevance to the bug (see rankFiles) until the token budget is spent; the first file that
 * does not fit is cut short if a useful part of it does.
 */
export class ContextBuilder {
  constructor(private readonly tokens: TokenCounter = new TokenCounter()) {}

  async build(repoDir: string, paths: readonly string[], input: RankingInput, budget: ContextBudget): Promise<RepoContext> {
    const candidates: CandidateFile[] = new Array(paths.length);
    const realRepo = await realpath(repoDir);
    // A few reads at a time: a large repository must not exhaust file descriptors.
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < paths.length; i = next++) {
        candidates[i] = i < MAX_FILES_READ ? await this.load(realRepo, paths[i], budget.maxFileBytes) : { path: paths[i], content: null };
      }
    };
    await Promise.all(Array.from({ length: READ_CONCURRENCY }, worker));
    return this.select(candidates, input, budget);
  }

  select(candidates: readonly CandidateFile[], input: RankingInput, budget: ContextBudget): RepoContext {
    const tree = this.tree(
      candidates.map((c) => c.path),
      Math.floor(budget.maxTokens * TREE_SHARE),
    );
    let used = this.tokens.count(tree);
    const files: ContextFile[] = [];
    let omitted = 0;
    const ranked = rankFiles(
      candidates.filter((c) => c.content !== null),
      input,
    );
    for (const [i, f] of ranked.entries()) {
      const content = f.content as string;
      const left = budget.maxTokens - used;
      if (i >= MAX_FILES_CONSIDERED || left <= MIN_PARTIAL_TOKENS) {
        omitted++;
        continue;
      }
      // The path line and fence around each file cost a few tokens too.
      const overhead = this.tokens.count(f.path) + 12;
      const cost = this.tokens.count(content) + overhead;
      if (cost <= left) {
        files.push({ path: f.path, content, truncated: false });
        used += cost;
      } else if (files.length === 0 || (f.score > 0 && left - overhead >= MIN_PARTIAL_TOKENS)) {
        const cut = this.tokens.truncate(content, left - overhead);
        files.push({ path: f.path, content: cut.text, truncated: true });
        used += cut.tokens + overhead;
      } else {
        omitted++;
      }
    }
    return { tree, files, omittedFiles: omitted, tokens: used };
  }

  private tree(paths: readonly string[], maxTokens: number): string {
    const sorted = [...paths].sort();
    const full = sorted.join('\n');
    if (this.tokens.count(full) <= maxTokens) return full;
    const lines: string[] = [];
    let used = 0;
    for (const p of sorted) {
      const cost = this.tokens.count(p) + 1;
      if (used + cost > maxTokens - 20) break;
      lines.push(p);
      used += cost;
    }
    return `${lines.join('\n')}\n... and ${sorted.length - lines.length} more files`;
  }

  /** Reads a tracked file unless it is binary, too large, generated, or not a regular file. */
  private async load(repoDir: string, path: string, maxBytes: number): Promise<CandidateFile> {
    if (SKIP_CONTENT.test(path)) return { path, content: null };
    const full = join(repoDir, path);
    try {
      // lstat, not stat: a symlink could point anywhere on the machine (the service's .env).
      const st = await lstat(full);
      if (!st.isFile() || st.size > maxBytes) return { path, content: null };
      // A folder on the way may be a symlink too (the test command can replace `src/` with a link
      // to /proc/self): the file must really be inside the checkout. The service reads it with its
      // own rights, outside the sandbox, and nothing sandboxed runs while it does.
      if (!(await realpath(full)).startsWith(repoDir + sep)) return { path, content: null };
      const buf = await readFile(full);
      if (buf.subarray(0, 8000).includes(0)) return { path, content: null };
      return { path, content: buf.toString('utf8') };
    } catch {
      return { path, content: null };
    }
  }
}
