import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPluginsFile } from './plugins.config';

describe('readPluginsFile', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'asa-plugins-file-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (text: string) => {
    const f = join(dir, `p-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(f, text);
    return f;
  };

  it('reads optional and options per plugin; the default file may be missing, a named one may not', () => {
    const f = file('{ "plugins": { "./a.js": { "optional": true, "options": { "file": "x" } }, "pkg": {} } }');
    const settings = readPluginsFile(f, true);
    expect(settings.get('./a.js')).toEqual({ optional: true, options: { file: 'x' } });
    expect(settings.get('pkg')).toEqual({ optional: false, options: {} });
    expect(readPluginsFile(join(dir, 'absent.json'), false).size).toBe(0);
    expect(() => readPluginsFile(join(dir, 'absent.json'), true)).toThrow(/absent\.json: the file does not exist \(PLUGINS_FILE names it\)/);
  });

  it('names the field that is wrong', () => {
    expect(() => readPluginsFile(file('{ "plugins": '), false)).toThrow(/not valid JSON/);
    expect(() => readPluginsFile(file('[]'), false)).toThrow(/must hold a JSON object/);
    expect(() => readPluginsFile(file('{ "plugin": {} }'), false)).toThrow(/unknown field "plugin"/);
    expect(() => readPluginsFile(file('{ "plugins": [] }'), false)).toThrow(/"plugins" must be an object keyed by the path or package name/);
    expect(() => readPluginsFile(file('{ "plugins": { "./a.js": true } }'), false)).toThrow(/plugins\["\.\/a\.js"\] must be an object/);
    expect(() => readPluginsFile(file('{ "plugins": { "./a.js": { "optinal": true } } }'), false)).toThrow(/plugins\["\.\/a\.js"\]: unknown field "optinal"/);
    expect(() => readPluginsFile(file('{ "plugins": { "./a.js": { "optional": "yes" } } }'), false)).toThrow(/plugins\["\.\/a\.js"\]\.optional must be true or false/);
    expect(() => readPluginsFile(file('{ "plugins": { "./a.js": { "options": 3 } } }'), false)).toThrow(/plugins\["\.\/a\.js"\]\.options must be an object/);
  });
});
