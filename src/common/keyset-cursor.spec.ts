import { decodeKeysetCursor, encodeKeysetCursor } from './keyset-cursor';

describe('keyset list cursor', () => {
  it('round-trips and rejects anything it did not issue', () => {
    const c = { ms: 1764199000123, id: '0b8f5c2e-4f7a-4d55-9a55-2f1e7c9b1a10' };
    expect(decodeKeysetCursor(encodeKeysetCursor(c))).toEqual(c);
    expect(decodeKeysetCursor('bm9wZQ')).toBeNull();
    expect(decodeKeysetCursor('%%%')).toBeNull();
    expect(decodeKeysetCursor(Buffer.from("1:'; DROP TABLE tasks; --").toString('base64url'))).toBeNull();
  });
});
