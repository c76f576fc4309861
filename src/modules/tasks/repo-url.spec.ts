import { InvalidRepoUrlException, parseRepoUrl, repoUrlProblem } from './repo-url';

describe('repoUrlProblem', () => {
  it.each([
    ['https://github.com/example/repo', 'https'],
    ['http://127.0.0.1:8080/repo.git', 'http'],
    ['file:///tmp/some/repo', 'file'],
    ['/tmp/some/repo', 'local'],
  ])('accepts %s as %s by default', (url, scheme) => {
    expect(repoUrlProblem(url)).toBeNull();
    expect(parseRepoUrl(url).scheme).toBe(scheme);
  });

  it.each([
    ['--upload-pack=touch%20/tmp/pwned', /start with "-"/],
    ['-u', /start with "-"/],
    ['ext::sh -c touch% /tmp/pwned', /whitespace/],
    ['ext::sh', /remote-helper/],
    ['fd::17', /remote-helper/],
    ['https://example.com/repo\n--upload-pack=x', /whitespace/],
    ['https://example.com/re po', /whitespace/],
    ['ftp://example.com/repo', /scheme "ftp" is not supported/],
    ['ssh://git@example.com/repo.git', /"ssh" URLs are not allowed here; allowed: https, http, file, local/],
    ['git@github.com:example/repo.git', /"ssh" URLs are not allowed here; allowed: https, http, file, local/],
    ['relative/path', /absolute local path/],
    ['https://user:secret@example.com/repo', /credentials/],
    ['file://otherhost/repo', /local path/],
    ['https://', /not a valid URL|must name a host/],
    ['', /non-empty/],
  ])('rejects %j', (url, message) => {
    expect(repoUrlProblem(url)).toMatch(message);
    expect(() => parseRepoUrl(url)).toThrow(InvalidRepoUrlException);
  });

  it('rejects non-strings', () => {
    expect(repoUrlProblem(42)).toMatch(/string/);
  });

  it('follows the configured allowlist', () => {
    expect(repoUrlProblem('/tmp/repo', ['https'])).toMatch(/local paths are not allowed/);
    expect(repoUrlProblem('file:///tmp/repo', ['https'])).toMatch(/"file" URLs are not allowed/);
    expect(repoUrlProblem('git@github.com:example/repo.git', ['ssh'])).toBeNull();
    expect(repoUrlProblem('ssh://git@example.com/repo.git', ['ssh'])).toBeNull();
  });
});
