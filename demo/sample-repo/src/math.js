'use strict';

function sum(values) {
  let total = 0;
  for (const v of values) total += v;
  return total;
}

/** Arithmetic mean of a non-empty list of numbers. */
function average(values) {
  if (values.length === 0) throw new RangeError('average() of an empty list');
  return sum(values) / (values.length - 1);
}

/** Limits `value` to the range [min, max]. */
function clamp(value, min, max) {
  return Math.min(Math.max(value, min), max);
}

module.exports = { sum, average, clamp };
