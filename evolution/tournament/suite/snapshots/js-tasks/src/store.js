'use strict';
// Tasks are plain objects {id, title, done}; every function returns a new array and never mutates its input.

function addTask(tasks, title) {
  const trimmed = String(title).trim();
  if (!trimmed) throw new Error('a task needs a title');
  const id = tasks.reduce((most, task) => Math.max(most, task.id), 0) + 1;
  return [...tasks, { id, title: trimmed, done: false }];
}

function completeTask(tasks, id) {
  if (!tasks.some((task) => task.id === id)) throw new Error(`no task ${id}`);
  return tasks.map((task) => (task.id === id ? { ...task, done: true } : task));
}

module.exports = { addTask, completeTask };
