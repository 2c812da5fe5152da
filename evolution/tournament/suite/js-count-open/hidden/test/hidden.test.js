'use strict';
// Hidden grading tests of the benchmark task js-count-open.
const test = require('node:test');
const assert = require('node:assert');
const store = require('../src/store');

const three = () => store.addTask(store.addTask(store.addTask([], 'Buy milk'), 'call Mum'), 'write report');

test('completed tasks are not counted', () => {
  assert.strictEqual(store.countOpen(store.completeTask(three(), 1)), 2);
});

test('all open', () => {
  assert.strictEqual(store.countOpen(three()), 3);
});

test('empty counts zero', () => {
  assert.strictEqual(store.countOpen([]), 0);
});
