"""Hidden grading tests of the benchmark task py-clear-done."""

from __future__ import annotations

import pytest

from tasks_demo.store import TaskNotFound, TaskStore


@pytest.fixture
def store(tmp_path):
    store = TaskStore(tmp_path / "tasks.json")
    for title in ("Buy milk", "call Mum", "write report"):
        store.add(title)
    return store

def test_completed_tasks_are_removed(store, tmp_path):
    store.complete(1)
    store.complete(3)
    store.clear_done()
    assert [t.id for t in TaskStore(tmp_path / "tasks.json").list()] == [2]


def test_returns_how_many_were_removed(store):
    store.complete(1)
    store.complete(3)
    assert store.clear_done() == 2


def test_nothing_done_removes_nothing(store):
    assert store.clear_done() == 0
    assert len(store.list()) == 3
