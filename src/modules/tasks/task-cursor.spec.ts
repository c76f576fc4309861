import { decodeTaskCursor, encodeTaskCursor } from './task-cursor';

describe('task list cursor', () => {
  it('round-trips and rejects anything it did not issue', () => {
    const c = { createdAtMs: 1764199000123, id: '0b8f5c2e-4f7a-4d55-9a55-2f1e7c9b1a10' };
    expect(decodeTaskCursor(encodeTaskCursor(c))).toEqual(c);
    expect(decodeTaskCursor('bm9wZQ')).toBeNull();
    expect(decodeTaskCursor('%%%')).toBeNull();
    expect(decodeTaskCursor(Buffer.from("1:'; DROP TABLE tasks; --").toString('base64url'))).toBeNull();
  });
});
