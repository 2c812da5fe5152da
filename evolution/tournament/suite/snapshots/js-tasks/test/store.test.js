'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { addTask, completeTask } = require('../src/store');

test('added tasks get increasing ids', () => {
  const tasks = addTask(addTask([], 'buy milk'), 'call mum');
  assert.deepStrictEqual(tasks.map((t) => t.id), [1, 2]);
});

test('completing a task marks only it done', () => {
  const tasks = completeTask(addTask(addTask([], 'a'), 'b'), 1);
  assert.deepStrictEqual(tasks.map((t) => t.done), [true, false]);
});
