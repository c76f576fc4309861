import { decodeUserCursor, encodeUserCursor } from './user-cursor';

describe('user list cursor', () => {
  it('round-trips, keeps money exact and rejects anything it did not issue', () => {
    const c = { days: 30, nowMs: 1764199000123, costNanos: 123_456_789_012_345_678_901n, key: 'user:a@b.c' };
    expect(decodeUserCursor(encodeUserCursor(c))).toEqual(c);
    expect(decodeUserCursor('bm9wZQ')).toBeNull();
    expect(decodeUserCursor('%%%')).toBeNull();
    expect(decodeUserCursor(Buffer.from('1:30:x:1:u').toString('base64url'))).toBeNull();
  });
});
