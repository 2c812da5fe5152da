'use strict';
// Hidden grading tests of the benchmark task js-rename.
const test = require('node:test');
const assert = require('node:assert');
const store = require('../src/store');

const three = () => store.addTask(store.addTask(store.addTask([], 'Buy milk'), 'call Mum'), 'write report');

test('the title is replaced, trimmed', () => {
  assert.strictEqual(store.renameTask(three(), 1, '  Buy oat milk ')[0].title, 'Buy oat milk');
});

test('an empty title throws', () => {
  assert.throws(() => store.renameTask(three(), 1, '   '));
});

test('an unknown id throws', () => {
  assert.throws(() => store.renameTask(three(), 9, 'x'));
});
