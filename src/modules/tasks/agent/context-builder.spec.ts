import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContextBuilder } from './context-builder';

/** Reading a real checkout: what is never sent to the model. */
describe('ContextBuilder.build (real files)', () => {
  let dir: string;
  let repo: string;
  const secret = 'OPENAI_API_KEY=sk-service-secret-0000';

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'asa-context-'));
    repo = join(dir, 'repo');
    mkdirSync(join(repo, 'src'), { recursive: true });
    writeFileSync(join(dir, 'service.env'), secret);
    writeFileSync(join(repo, 'src/app.js'), 'function handler() { return 1; }\n');
    symlinkSync(join(dir, 'service.env'), join(repo, 'src/config.js'));
    writeFileSync(join(repo, 'logo.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 1, 2, 3]));
    writeFileSync(join(repo, 'data.bin'), Buffer.concat([Buffer.from('handler'), Buffer.alloc(10)]));
    writeFileSync(join(repo, 'huge.js'), `// handler\n${'x'.repeat(50_000)}`);
    writeFileSync(join(repo, 'package-lock.json'), '{"handler": true}');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('lists every tracked path but sends only regular, text, small, non-generated files (never a symlink target)', async () => {
    const paths = ['src/app.js', 'src/config.js', 'logo.png', 'data.bin', 'huge.js', 'package-lock.json', 'gone.js'];
    const ctx = await new ContextBuilder().build(repo, paths, { bugDescription: 'handler in src/config.js is wrong' }, { maxTokens: 10_000, maxFileBytes: 10_000 });
    expect(ctx.files.map((f) => f.path)).toEqual(['src/app.js']);
    for (const p of paths) expect(ctx.tree).toContain(p);
    expect(JSON.stringify(ctx)).not.toContain('sk-service-secret');
  });

  it('never reads through a folder that a test command replaced with a symlink (e.g. to /proc/self)', async () => {
    // A tracked `lib/environ` whose folder now points at the service's secrets.
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'environ'), secret);
    symlinkSync(outside, join(repo, 'lib'));
    const ctx = await new ContextBuilder().build(repo, ['src/app.js', 'lib/environ'], { bugDescription: 'lib/environ handler' }, { maxTokens: 10_000, maxFileBytes: 10_000 });
    expect(ctx.files.map((f) => f.path)).toEqual(['src/app.js']);
    expect(JSON.stringify(ctx)).not.toContain('sk-service-secret');
  });
});
