"""Hidden grading tests of the benchmark task py-get."""

from __future__ import annotations

import pytest

from tasks_demo.store import TaskNotFound, TaskStore


@pytest.fixture
def store(tmp_path):
    store = TaskStore(tmp_path / "tasks.json")
    for title in ("Buy milk", "call Mum", "write report"):
        store.add(title)
    return store

def test_get_returns_the_task(store):
    assert store.get(3).title == "write report"


def test_get_sees_completion(store):
    store.complete(2)
    assert store.get(2).done


def test_unknown_id_raises(store):
    with pytest.raises(TaskNotFound):
        store.get(42)
