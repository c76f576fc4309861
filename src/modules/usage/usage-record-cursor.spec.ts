import { decodeUsageRecordCursor, encodeUsageRecordCursor } from './usage-record-cursor';

describe('usage record cursor', () => {
  it('round-trips the position of a row', () => {
    const c = { createdAtMs: 1_764_547_200_123, id: '0b5c4c1e-1d7a-4a55-9f0e-6f1c3c1e2b7a' };
    expect(decodeUsageRecordCursor(encodeUsageRecordCursor(c))).toEqual(c);
  });

  it('refuses values it did not issue', () => {
    for (const bad of ['', 'not a cursor', Buffer.from('abc:def').toString('base64url'), Buffer.from('12:').toString('base64url'), Buffer.from(`1:${'x'.repeat(37)}`).toString('base64url')]) {
      expect(decodeUsageRecordCursor(bad)).toBeNull();
    }
  });
});
