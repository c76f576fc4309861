import { HttpStatus } from '@nestjs/common';
import { isAbsolute } from 'node:path';
import { DomainException } from '../../common/domain.exception';

/**
 * Kinds of repository address a task may name. `local` is an absolute path on the service's
 * machine; `ssh` covers both `ssh://` URLs and scp-like `user@host:path`.
 */
export const REPO_URL_SCHEMES = ['https', 'http', 'file', 'local', 'ssh', 'git'] as const;
export type RepoUrlScheme = (typeof REPO_URL_SCHEMES)[number];
export const DEFAULT_REPO_URL_SCHEMES: readonly RepoUrlScheme[] = ['https', 'http', 'file', 'local'];

export const REPO_URL_MAX_LENGTH = 2048;

export interface ParsedRepoUrl {
  /** The value exactly as given (safe to pass to `git clone -- <url> <dir>`). */
  readonly url: string;
  readonly scheme: RepoUrlScheme;
}

export class InvalidRepoUrlException extends DomainException {
  readonly code = 'TASK_INVALID_REPO_URL';
  readonly status = HttpStatus.BAD_REQUEST;
}

/**
 * The one check of a repository address, used by the task API (400 at submit) and by the
 * workspace before it runs `git clone`. Rejects anything git could read as an option
 * (`-...`) or as a remote helper that runs a command (`ext::sh -c ...`, `fd::`), control
 * characters and whitespace (which could smuggle a second argument or line into a log),
 * embedded credentials (they would be stored and shown), and schemes not in `allowed`.
 */
export function repoUrlProblem(value: unknown, allowed: readonly string[] = DEFAULT_REPO_URL_SCHEMES): string | null {
  if (typeof value !== 'string' || value.length === 0) return 'repo_url must be a non-empty string';
  if (value.length > REPO_URL_MAX_LENGTH) return `repo_url must be at most ${REPO_URL_MAX_LENGTH} characters`;
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(value)) return 'repo_url must not contain whitespace, newlines or control characters';
  if (value.startsWith('-')) return 'repo_url must not start with "-" (git would read it as an option)';
  // git's "<transport>::<address>" syntax selects a remote helper; ext:: runs an arbitrary command.
  if (/^[^/]*::/.test(value)) return 'repo_url must not use a git remote-helper transport ("<transport>::...", e.g. ext::)';

  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(value);
  let scheme: string;
  if (schemeMatch) {
    scheme = schemeMatch[1].toLowerCase();
    if (!(REPO_URL_SCHEMES as readonly string[]).includes(scheme)) {
      return `repo_url scheme "${scheme}" is not supported; allowed: ${allowed.join(', ')}`;
    }
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      return 'repo_url is not a valid URL';
    }
    // An https username is often a token; an ssh username (git@) is not a secret.
    if (parsed.password || (parsed.username && (scheme === 'http' || scheme === 'https'))) {
      return 'repo_url must not embed credentials (they would be stored and shown with the task)';
    }
    if (scheme === 'file') {
      if (parsed.hostname && parsed.hostname !== 'localhost') return 'a file:// repo_url must name a local path (file:///path/to/repo)';
      if (!parsed.pathname || parsed.pathname === '/') return 'a file:// repo_url must name a repository path';
    } else if (!parsed.hostname) {
      return `a ${scheme}:// repo_url must name a host`;
    }
  } else if (/^[^/]*:/.test(value)) {
    // scp-like "user@host:path/repo.git": git treats it as ssh.
    scheme = 'ssh';
  } else {
    scheme = 'local';
    if (!isAbsolute(value)) return 'repo_url must be a URL (https://...) or an absolute local path';
  }
  if (!allowed.includes(scheme)) {
    const shown = scheme === 'local' ? 'local paths are' : `"${scheme}" URLs are`;
    return `repo_url: ${shown} not allowed here; allowed: ${allowed.join(', ')} (TASK_REPO_URL_SCHEMES)`;
  }
  return null;
}

/** Like `repoUrlProblem`, but returns the parsed address or throws `InvalidRepoUrlException` (400). */
export function parseRepoUrl(value: unknown, allowed: readonly string[] = DEFAULT_REPO_URL_SCHEMES): ParsedRepoUrl {
  const problem = repoUrlProblem(value, allowed);
  if (problem) throw new InvalidRepoUrlException(problem);
  const url = value as string;
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url);
  const scheme = (m ? m[1].toLowerCase() : /^[^/]*:/.test(url) ? 'ssh' : 'local') as RepoUrlScheme;
  return { url, scheme };
}
