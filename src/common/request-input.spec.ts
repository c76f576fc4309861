import { jsonDepthExceeds, nulPaths } from './request-input';

describe('jsonDepthExceeds', () => {
  it('counts nesting of arrays and objects, not brackets inside strings', () => {
    expect(jsonDepthExceeds('{"a":[1,{"b":2}]}', 3)).toBe(false);
    expect(jsonDepthExceeds('{"a":[1,{"b":2}]}', 2)).toBe(true);
    expect(jsonDepthExceeds(`{"a":"${'['.repeat(1000)}"}`, 2)).toBe(false);
    // An escaped quote does not end the string.
    expect(jsonDepthExceeds(`{"a":"\\"[[[[["}`, 1)).toBe(false);
    expect(jsonDepthExceeds(Buffer.from(`{"é":"€[[[","b":[[[]]]}`), 3)).toBe(true);
    expect(jsonDepthExceeds('['.repeat(100_000), 64)).toBe(true);
  });
});

describe('nulPaths', () => {
  it('names each value and key holding a NUL', () => {
    expect(nulPaths({ a: 'x', b: ['y', 'z\u0000'], c: { d: '\u0000' }, 'e\u0000': 1, n: 5 })).toEqual(['b[1]', 'c.d', 'e\u0000']);
    expect(nulPaths('\u0000')).toEqual(['(body)']);
    expect(nulPaths(null)).toEqual([]);
  });
});
