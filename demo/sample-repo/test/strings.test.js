'use strict';
const assert = require('node:assert/strict');
const { slugify, capitalize } = require('../src/strings');

assert.equal(capitalize('hello'), 'Hello');
assert.equal(slugify('Hello'), 'hello');
assert.equal(slugify('Hello World'), 'hello-world');
assert.equal(slugify('  Hello Big   World '), 'hello-big-world', 'every run of spaces becomes one dash');

console.log('strings: all tests passed');
