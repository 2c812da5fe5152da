"""Hidden grading tests of the benchmark task py-remove."""

from __future__ import annotations

import pytest

from tasks_demo.store import TaskNotFound, TaskStore


@pytest.fixture
def store(tmp_path):
    store = TaskStore(tmp_path / "tasks.json")
    for title in ("Buy milk", "call Mum", "write report"):
        store.add(title)
    return store

def test_remove_returns_the_task(store):
    assert store.remove(2).title == "call Mum"


def test_removed_task_is_gone_after_reopening(store, tmp_path):
    store.remove(2)
    assert [t.id for t in TaskStore(tmp_path / "tasks.json").list()] == [1, 3]


def test_unknown_id_raises(store):
    with pytest.raises(TaskNotFound):
        store.remove(99)
