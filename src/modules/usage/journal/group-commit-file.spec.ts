import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppendDurability, GroupCommitFile } from './group-commit-file';

/**
 * A real file whose fdatasync is held until the test lets it go, so what waits for the disk and
 * what does not can be seen (the write itself is real).
 */
async function fileWithHeldFlush(path: string, durability: AppendDurability, onFlushError?: (err: unknown) => void) {
  const file = await GroupCommitFile.open(path, durability, onFlushError);
  const fh = (file as unknown as { fh: FileHandle }).fh;
  const realSync = fh.datasync.bind(fh);
  const held: { release: () => void; fail: (err: Error) => void }[] = [];
  fh.datasync = () =>
    new Promise<void>((resolve, reject) =>
      held.push({ release: () => void realSync().then(resolve, reject), fail: reject }),
    );
  return { file, held };
}

/** Waits (up to 5 s) for the held flushes to number `n`: the write before them runs on libuv's pool, so it takes a while on a loaded machine. */
const flushesHeld = async (held: unknown[], n: number) => {
  for (const t0 = Date.now(); held.length < n && Date.now() - t0 < 5_000; ) await new Promise((r) => setTimeout(r, 2));
  expect(held).toHaveLength(n);
};

const settledWithin = async (p: Promise<unknown>, turns = 20): Promise<boolean> => {
  let done = false;
  void p.then(() => (done = true), () => (done = true));
  for (let i = 0; i < turns && !done; i++) await new Promise((r) => setImmediate(r));
  return done;
};

describe('GroupCommitFile', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'asa-group-commit-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('disk: an append resolves only after its fdatasync', async () => {
    const path = join(dir, 'disk.log');
    const { file, held } = await fileWithHeldFlush(path, 'disk');
    const a = file.append('one\n');
    await flushesHeld(held, 1);
    expect(await settledWithin(a)).toBe(false);
    expect(readFileSync(path, 'utf8')).toBe('one\n'); // written, not yet flushed
    held[0].release();
    await a;
    await file.close();
  });

  it('disk: an append asking only for the write resolves before the fdatasync its group waits for', async () => {
    const path = join(dir, 'mixed.log');
    const { file, held } = await fileWithHeldFlush(path, 'disk');
    const durable = file.append('start\n');
    const written = file.append('end\n', 'written');
    await written;
    expect(readFileSync(path, 'utf8')).toBe('start\nend\n');
    await flushesHeld(held, 1);
    expect(await settledWithin(durable)).toBe(false);
    held[0].release();
    await durable;
    await file.close();
  });

  it('os: an append resolves once written, before its fdatasync; sync() and close() wait for the flush', async () => {
    const path = join(dir, 'os.log');
    const { file, held } = await fileWithHeldFlush(path, 'os');
    await file.append('one\n');
    expect(readFileSync(path, 'utf8')).toBe('one\n');
    await flushesHeld(held, 1); // the flush started, and nobody waits for it but sync()
    const synced = file.sync();
    expect(await settledWithin(synced)).toBe(false);

    // Writes made while a flush runs do not wait for it; one more flush then covers them all.
    await Promise.all([file.append('two\n'), file.append('three\n')]);
    expect(readFileSync(path, 'utf8')).toBe('one\ntwo\nthree\n');
    const closing = file.close();
    held[0].release();
    await synced;
    expect(await settledWithin(closing)).toBe(false); // two and three are not flushed yet
    await flushesHeld(held, 2);
    held[1].release();
    await closing;
  });

  it('os: a flush that fails is reported, and sync() still ends', async () => {
    const errors: unknown[] = [];
    const { file, held } = await fileWithHeldFlush(join(dir, 'fail.log'), 'os', (err) => errors.push(err));
    await file.append('one\n');
    await flushesHeld(held, 1);
    const synced = file.sync();
    held[0].fail(new Error('EIO: i/o error, fdatasync'));
    await synced;
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toContain('EIO');
    await file.close();
  });
});
