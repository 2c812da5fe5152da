"""Hidden grading tests of the benchmark task py-reopen."""

from __future__ import annotations

import pytest

from tasks_demo.store import TaskNotFound, TaskStore


@pytest.fixture
def store(tmp_path):
    store = TaskStore(tmp_path / "tasks.json")
    for title in ("Buy milk", "call Mum", "write report"):
        store.add(title)
    return store

def test_reopened_task_is_open(store, tmp_path):
    store.complete(1)
    store.reopen(1)
    assert not TaskStore(tmp_path / "tasks.json").list()[0].done


def test_reopening_an_open_task_keeps_it_open(store):
    assert store.reopen(2).done is False


def test_unknown_id_raises(store):
    with pytest.raises(TaskNotFound):
        store.reopen(99)
