"""Hidden grading tests of the benchmark task py-titles."""

from __future__ import annotations

import pytest

from tasks_demo.store import TaskNotFound, TaskStore


@pytest.fixture
def store(tmp_path):
    store = TaskStore(tmp_path / "tasks.json")
    for title in ("Buy milk", "call Mum", "write report"):
        store.add(title)
    return store

def test_titles_in_order(store):
    assert store.titles() == ["Buy milk", "call Mum", "write report"]


def test_open_titles_only(store):
    store.complete(2)
    assert store.titles(include_done=False) == ["Buy milk", "write report"]


def test_default_includes_done(store):
    store.complete(2)
    assert len(store.titles()) == 3
