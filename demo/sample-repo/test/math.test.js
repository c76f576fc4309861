'use strict';
const assert = require('node:assert/strict');
const { sum, average, clamp } = require('../src/math');

assert.equal(sum([1, 2, 3]), 6);
assert.equal(clamp(15, 0, 10), 10);
assert.equal(clamp(-1, 0, 10), 0);
assert.equal(average([2, 4, 6]), 4, 'average of 2, 4, 6 is 4');
assert.equal(average([5]), 5, 'average of a single value is that value');
assert.throws(() => average([]), RangeError);

console.log('math: all tests passed');
