import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiVersionProblem, loadPlugin, PluginKind, shapeProblem } from './plugin-loader';

const kind: PluginKind<{ name: string; write(): Promise<void> }> = {
  label: 'Usage sink',
  variable: 'USAGE_SINK_PLUGINS',
  factory: 'createUsageSink',
  problem: (v) => shapeProblem(v, ['write']),
};

describe('apiVersionProblem', () => {
  it('accepts the same major with a minor no newer than the host', () => {
    expect(apiVersionProblem('1.0.0', '1.0.0')).toBeNull();
    expect(apiVersionProblem('1.0.7', '1.0.0')).toBeNull();
    expect(apiVersionProblem('1.1.0', '1.3.0')).toBeNull();
  });

  it('refuses another major, a newer minor, and anything that is not semver', () => {
    expect(apiVersionProblem('2.0.0', '1.3.0')).toMatch(/needs plugin API 2\.0\.0; this service provides 1\.3\.0/);
    expect(apiVersionProblem('0.9.0', '1.0.0')).toMatch(/needs plugin API 0\.9\.0/);
    expect(apiVersionProblem('1.4.0', '1.3.0')).toMatch(/no newer than 1\.3/);
    expect(apiVersionProblem('1', '1.0.0')).toMatch(/apiVersion "1", which is not a semver version/);
    expect(apiVersionProblem(1, '1.0.0')).toMatch(/apiVersion 1, which is not a semver version/);
  });
});

describe('loadPlugin', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'asa-loader-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const plugin = (file: string, source: string) => {
    writeFileSync(join(dir, file), source);
    return join(dir, file);
  };
  const load = (spec: string, options: Record<string, unknown> = {}, timeoutMs = 5_000) => loadPlugin(spec, kind, { options, timeoutMs });

  it('hands the factory its options and reports the declared version and the source', async () => {
    const spec = plugin('ok.js', 'exports.apiVersion = "1.0.0"; exports.createUsageSink = (o) => ({ name: o.name, async write() {} });');
    const res = await load(spec, { name: 'from-options' });
    expect(res).toMatchObject({ ok: true, source: 'path', apiVersion: '1.0.0', value: { name: 'from-options' } });
  });

  it('finds the factory on a default export, and accepts a plugin that declares no version', async () => {
    const spec = plugin('default.js', 'module.exports.default = { createUsageSink: async () => ({ name: "d", async write() {} }) };');
    expect(await load(spec)).toMatchObject({ ok: true, apiVersion: null, value: { name: 'd' } });
  });

  it('says where a missing plugin was looked for, on one line', async () => {
    const res = await load(join(dir, 'absent.js'));
    expect(res).toMatchObject({ ok: false, reason: `there is no module at ${join(dir, 'absent.js')}` });
    expect(await load('asa-no-such-package-x')).toMatchObject({ ok: false, source: 'package', reason: expect.stringMatching(/^no installed package "asa-no-such-package-x"/) });
  });

  it('keeps the message of a module the plugin itself requires but lacks', async () => {
    const spec = plugin('needs.js', 'require("asa-missing-dependency-y"); exports.createUsageSink = () => ({});');
    const res = await load(spec);
    expect(res.ok).toBe(false);
    expect(!res.ok && res.reason).toMatch(/^Cannot find module 'asa-missing-dependency-y'$/);
  });

  it('reports a throwing module, a throwing factory, a hanging factory and a missing method', async () => {
    expect(await load(plugin('throws-at-import.js', 'throw new Error("bad\\nsecond line");'))).toMatchObject({ ok: false, reason: 'bad' });
    expect(await load(plugin('throws.js', 'exports.createUsageSink = () => { throw new Error("no config"); };'))).toMatchObject({
      ok: false,
      reason: 'createUsageSink() threw: no config',
    });
    expect(await load(plugin('hangs.js', 'exports.createUsageSink = () => new Promise(() => {});'), {}, 150)).toMatchObject({
      ok: false,
      reason: 'createUsageSink() did not return within 150 ms',
    });
    expect(await load(plugin('no-write.js', 'exports.createUsageSink = () => ({ name: "w" });'))).toMatchObject({
      ok: false,
      reason: 'createUsageSink() did not return an object with name and write() ("w" has no write())',
    });
    expect(await load(plugin('bad-name.js', 'exports.createUsageSink = () => ({ name: "Has Spaces", async write() {} });'))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/returned the name "Has Spaces"; a name must be/),
    });
  });

  it('checks the declared version before calling the factory', async () => {
    const spec = plugin('v2.js', 'exports.apiVersion = "2.0.0"; exports.createUsageSink = () => { throw new Error("must not run"); };');
    expect(await load(spec)).toMatchObject({ ok: false, apiVersion: null, reason: expect.stringMatching(/^it needs plugin API 2\.0\.0; this service provides 1\.1\.0/) });
  });
});
