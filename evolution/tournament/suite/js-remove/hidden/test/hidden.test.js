'use strict';
// Hidden grading tests of the benchmark task js-remove.
const test = require('node:test');
const assert = require('node:assert');
const store = require('../src/store');

const three = () => store.addTask(store.addTask(store.addTask([], 'Buy milk'), 'call Mum'), 'write report');

test('removes the task', () => {
  assert.deepStrictEqual(store.removeTask(three(), 2).map((t) => t.id), [1, 3]);
});

test('an unknown id throws', () => {
  assert.throws(() => store.removeTask(three(), 9));
});

test('the input is not changed', () => {
  const tasks = three();
  store.removeTask(tasks, 1);
  assert.strictEqual(tasks.length, 3);
});
