'use strict';
// Hidden grading tests of the benchmark task js-search.
const test = require('node:test');
const assert = require('node:assert');
const store = require('../src/store');

const three = () => store.addTask(store.addTask(store.addTask([], 'Buy milk'), 'call Mum'), 'write report');

test('matching ignores case', () => {
  assert.deepStrictEqual(store.searchTasks(three(), 'MUM').map((t) => t.id), [2]);
});

test('order is kept', () => {
  assert.deepStrictEqual(store.searchTasks(three(), 'i').map((t) => t.id), [1, 3]);
});

test('no match is empty', () => {
  assert.deepStrictEqual(store.searchTasks(three(), 'zebra'), []);
});
