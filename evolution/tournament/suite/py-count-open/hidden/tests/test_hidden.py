"""Hidden grading tests of the benchmark task py-count-open."""

from __future__ import annotations

import pytest

from tasks_demo.store import TaskNotFound, TaskStore


@pytest.fixture
def store(tmp_path):
    store = TaskStore(tmp_path / "tasks.json")
    for title in ("Buy milk", "call Mum", "write report"):
        store.add(title)
    return store

def test_completed_tasks_are_not_counted(store):
    store.complete(3)
    assert store.count_open() == 2


def test_all_open(store):
    assert store.count_open() == 3


def test_empty_store_counts_zero(tmp_path):
    assert TaskStore(tmp_path / "none.json").count_open() == 0
