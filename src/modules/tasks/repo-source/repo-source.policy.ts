import { Inject, Injectable, Optional } from '@nestjs/common';
import { execFile } from 'node:child_process';
import { lookup as dnsLookup } from 'node:dns/promises';
import { fileURLToPath } from 'node:url';
import { TasksConfig, tasksConfig } from '../../../config/tasks.config';
import { Principal } from '../../auth/principal';
import { InvalidRepoUrlException, parseRepoUrl, ParsedRepoUrl, REPO_URL_SCHEMES, repoUrlProblem } from '../repo-url';
import { HostAllowlist, internalAddressKind, internalHostNameKind, parseAddress } from './host-address';
import { localPathProblem, localRepositoryProblem } from './local-path';
import {
  GitCannotPinException,
  RepoHostForbiddenException, RepoHostUnresolvedException, RepoPathForbiddenException,
  RepoUrlForbiddenException,
} from './repo-source.exceptions';

/** Resolves a host name to every address it has (what git's own lookup could pick from). */
export type HostLookup = (host: string) => Promise<string[]>;
/** Token of the name resolver; the system's resolver (getaddrinfo, as git uses) unless overridden. */
export const REPO_HOST_LOOKUP = Symbol('REPO_HOST_LOOKUP');

export const systemHostLookup: HostLookup = async (host) => (await dnsLookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** What a user-scoped key may clone unless TASK_ALLOW_LOCAL_REPOS_FOR_USERS=true. */
export const USER_KEY_SCHEMES: readonly string[] = ['https'];

export type RepoSourceConfig = Pick<TasksConfig, 'repoUrlSchemes' | 'allowLocalReposForUsers' | 'repoHostAllowlist' | 'servicePaths'>;

/** First git release that reads `http.curloptResolve`; older ones ignore it silently. */
const PIN_MIN_GIT: readonly [number, number] = [2, 37];

/** Whether `git --version` output names a git that honours `http.curloptResolve`. */
export function gitCanPin(versionOutput: string): boolean {
  const m = /git version (\d+)\.(\d+)/.exec(versionOutput);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > PIN_MIN_GIT[0] || (major === PIN_MIN_GIT[0] && minor >= PIN_MIN_GIT[1]);
}

const DEFAULT_PORTS: Record<string, number> = { https: 443, http: 80, git: 9418, ssh: 22 };

const ALLOW_HINT = 'add the host (or its address or range) to TASK_REPO_HOST_ALLOWLIST to allow it';

interface HostTarget {
  /** The host as the URL string spells it (what git and curl look up). */
  readonly raw: string;
  /** The host as the URL parser normalised it (lower case, numeric IPv4 forms decoded). */
  readonly host: string;
  readonly port: number;
}

/**
 * Which repositories a task may clone. At submit: the kinds of repo_url a key may use, host
 * address literals and local names (`localhost`, metadata names), local paths into the service's
 * own files. At clone time: all of that again, then the host name is resolved, every address
 * checked, and git pinned to the checked addresses so a second lookup (DNS rebinding) cannot
 * send it elsewhere.
 */
@Injectable()
export class RepoSourcePolicy {
  private readonly allowlist: HostAllowlist;
  private readonly lookup: HostLookup;
  private gitVersion?: Promise<string>;

  constructor(
    @Inject(tasksConfig.KEY) private readonly config: RepoSourceConfig,
    @Optional() @Inject(REPO_HOST_LOOKUP) lookup?: HostLookup,
  ) {
    this.allowlist = new HostAllowlist(config.repoHostAllowlist);
    this.lookup = lookup ?? systemHostLookup;
  }

  /** Kinds of repo_url the principal may submit. */
  schemesFor(principal: Principal): string[] {
    const all = this.config.repoUrlSchemes as string[];
    if (principal.scope === 'admin' || this.config.allowLocalReposForUsers) return [...all];
    return all.filter((s) => USER_KEY_SCHEMES.includes(s));
  }

  /** The submit-time check: throws a 400 (or 403 for what the key may not use) naming repo_url and the rule. */
  async checkSubmit(value: unknown, principal: Principal): Promise<ParsedRepoUrl> {
    const userNote =
      principal.scope === 'user' && !this.config.allowLocalReposForUsers
        ? `; user-scoped API keys may use only ${USER_KEY_SCHEMES.join(', ')} URLs unless TASK_ALLOW_LOCAL_REPOS_FOR_USERS=true`
        : '';
    const syntax = repoUrlProblem(value, REPO_URL_SCHEMES);
    if (syntax) throw new InvalidRepoUrlException(syntax);
    const notConfigured = repoUrlProblem(value, this.config.repoUrlSchemes);
    if (notConfigured) throw new InvalidRepoUrlException(notConfigured + userNote);
    const repo = parseRepoUrl(value, this.config.repoUrlSchemes);
    if (!this.schemesFor(principal).includes(repo.scheme)) {
      const what = repo.scheme === 'local' ? 'local paths' : `${repo.scheme} URLs`;
      throw new RepoUrlForbiddenException(
        `repo_url: ${what} are not allowed for user-scoped API keys, which may clone only ${USER_KEY_SCHEMES.join(', ')}:// URLs; ` +
          'a deployment can allow http, file, local paths, ssh and git for user keys with TASK_ALLOW_LOCAL_REPOS_FOR_USERS=true ' +
          `(each kind must also be listed in TASK_REPO_URL_SCHEMES, now: ${this.config.repoUrlSchemes.join(',')})`,
      );
    }
    await this.checkWithoutLookup(repo);
    const path = localPathOf(repo);
    if (path !== null) {
      const problem = await localRepositoryProblem(path);
      if (problem) throw new InvalidRepoUrlException(problem);
    }
    return repo;
  }

  /**
   * The clone-time check of a stored repo_url. Returns the `-c name=value` git settings that pin
   * the clone to the addresses just checked and stop it from following redirects (a redirect
   * would lead to an address nobody checked). Throws the same exceptions as `checkSubmit`, and
   * RepoHostUnresolvedException when the name does not resolve.
   */
  async prepareClone(value: string): Promise<{ repo: ParsedRepoUrl; gitConfig: string[] }> {
    const repo = parseRepoUrl(value, this.config.repoUrlSchemes);
    const target = await this.checkWithoutLookup(repo);
    if (!target) return { repo, gitConfig: [] };
    const gitConfig = ['-c', 'http.followRedirects=false'];
    if (parseAddress(target.host)) return { repo, gitConfig };

    let addresses: string[];
    try {
      addresses = await this.lookup(target.host);
    } catch (err) {
      throw new RepoHostUnresolvedException(`repo_url host "${target.host}" could not be resolved: ${(err as Error).message}`);
    }
    if (addresses.length === 0) throw new RepoHostUnresolvedException(`repo_url host "${target.host}" has no address`);
    const nameAllowed = this.allowlist.allowsName(target.host);
    for (const a of addresses) {
      const parsed = parseAddress(a);
      if (!parsed) throw new RepoHostUnresolvedException(`repo_url host "${target.host}" resolved to "${a}", which is not an address`);
      const kind = internalAddressKind(parsed);
      if (kind && !nameAllowed && !this.allowlist.allowsAddress(parsed)) {
        throw new RepoHostForbiddenException(
          `repo_url host "${target.host}" resolves to ${parsed.toString()}, ${withArticle(kind)} address; internal addresses are never cloned: ${ALLOW_HINT}`,
          { host: target.host, address: parsed.toString() },
        );
      }
    }
    if (repo.scheme === 'http' || repo.scheme === 'https') {
      const version = await this.installedGitVersion();
      if (!gitCanPin(version)) {
        // An older git would ignore the pin and look the name up again: the check above would prove nothing.
        throw new GitCannotPinException(
          `${version.trim() || 'git'} cannot be pinned to the checked address of "${target.host}" (http.curloptResolve needs git ${PIN_MIN_GIT.join('.')} or later); upgrade git`,
        );
      }
      // curl (under git) takes these instead of its own lookup: the addresses checked above are the ones it connects to.
      const pinned = addresses.map((a) => (a.includes(':') ? `[${a}]` : a)).join(',');
      for (const name of new Set([target.raw, target.host])) gitConfig.push('-c', `http.curloptResolve=${name}:${target.port}:${pinned}`);
    }
    return { repo, gitConfig };
  }

  private installedGitVersion(): Promise<string> {
    this.gitVersion ??= new Promise((resolve) => execFile('git', ['--version'], { timeout: 10_000 }, (err, stdout) => resolve(err ? '' : stdout)));
    return this.gitVersion;
  }

  /** Host literals, local names and local paths: what can be judged without a lookup. Returns the host to resolve, if any. */
  private async checkWithoutLookup(repo: ParsedRepoUrl): Promise<HostTarget | null> {
    const path = localPathOf(repo);
    if (path !== null) {
      const problem = await localPathProblem(path, this.config.servicePaths);
      if (problem) throw new RepoPathForbiddenException(problem);
      return null;
    }
    const target = hostTarget(repo);
    const address = parseAddress(target.host);
    if (address) {
      const kind = internalAddressKind(address);
      if (kind && !this.allowlist.allowsAddress(address) && !this.allowlist.allowsName(target.host)) {
        throw new RepoHostForbiddenException(
          `repo_url host ${target.raw} is ${address.toString()}, ${withArticle(kind)} address; internal addresses are never cloned: ${ALLOW_HINT}`,
          { host: target.raw, address: address.toString() },
        );
      }
      return target;
    }
    const kind = internalHostNameKind(target.host);
    if (kind && !this.allowlist.allowsName(target.host)) {
      throw new RepoHostForbiddenException(`repo_url host "${target.raw}" is a ${kind} name; internal hosts are never cloned: ${ALLOW_HINT}`, {
        host: target.raw,
      });
    }
    return target;
  }
}

/** The folder a `local` or `file://` repo_url names, or null for network ones. */
function localPathOf(repo: ParsedRepoUrl): string | null {
  if (repo.scheme === 'local') return repo.url;
  if (repo.scheme === 'file') return fileURLToPath(repo.url.replace(/^file:\/\/localhost\//i, 'file:///'));
  return null;
}

/** Host and port of a network repo_url (http, https, git, ssh URL or scp-like `user@host:path`). */
function hostTarget(repo: ParsedRepoUrl): HostTarget {
  const scp = /^(?:[^@/]*@)?(\[[^\]]*\]|[^:/]+):/.exec(repo.url);
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(repo.url) && scp) {
    return checkedOpaque({ raw: scp[1], host: scp[1].toLowerCase(), port: DEFAULT_PORTS.ssh });
  }
  const u = new URL(repo.url);
  const raw = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)/.exec(repo.url)?.[1] ?? u.hostname;
  const port = u.port ? Number(u.port) : DEFAULT_PORTS[repo.scheme];
  // http(s) hosts are normalised by the URL parser; ssh:// and git:// hosts are not (opaque hosts).
  const special = repo.scheme === 'http' || repo.scheme === 'https';
  return special ? { raw, host: u.hostname, port } : checkedOpaque({ raw, host: u.hostname.toLowerCase(), port });
}

/**
 * ssh and git hosts reach ssh or git's own resolver as written: a percent-encoded host would be
 * checked as one string and looked up as another, so it is refused.
 */
function checkedOpaque(t: HostTarget): HostTarget {
  if (t.host.includes('%')) throw new InvalidRepoUrlException('repo_url host must not be percent-encoded');
  return t;
}

/** "a loopback", "an unspecified": the article a range's description takes in a message. */
function withArticle(words: string): string {
  return `${/^[aeiou]/i.test(words) ? 'an' : 'a'} ${words}`;
}
