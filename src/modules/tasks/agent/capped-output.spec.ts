import { CappedOutput, tailOf } from './capped-output';

describe('CappedOutput', () => {
  it('keeps everything under the cap', () => {
    const out = new CappedOutput(100);
    out.append('hello ');
    out.append(Buffer.from('world'));
    expect(out.toString()).toBe('hello world');
    expect(out.truncated).toBe(false);
    expect(out.totalBytes).toBe(11);
  });

  it('keeps the head and the tail and says how much was dropped', () => {
    const out = new CappedOutput(30); // head 10, tail 20
    for (let i = 0; i < 100; i++) out.append(`${String(i).padStart(3, '0')}\n`);
    const text = out.toString();
    expect(out.truncated).toBe(true);
    expect(out.totalBytes).toBe(400);
    expect(out.omittedBytes).toBe(370);
    expect(text.startsWith('000\n001\n00')).toBe(true);
    expect(text).toContain('[... 370 bytes of output omitted ...]');
    expect(text.endsWith('095\n096\n097\n098\n099\n')).toBe(true);
  });

  it('caps one huge chunk as well as many small ones', () => {
    const out = new CappedOutput(1000);
    out.append('x'.repeat(1_000_000));
    expect(out.toString().length).toBeLessThan(1100);
    expect(out.omittedBytes).toBe(999_000);
  });
});

describe('tailOf', () => {
  it('returns short text unchanged and cuts long text at a line start', () => {
    expect(tailOf('abc', 10)).toBe('abc');
    const text = Array.from({ length: 50 }, (_, i) => `line ${i}`).join('\n');
    const tail = tailOf(text, 30);
    expect(tail).toMatch(/^\[\.\.\. \d+ characters omitted \.\.\.\]\nline 4\d/);
    expect(tail.endsWith('line 49')).toBe(true);
  });
});
