"""Hidden grading tests of the benchmark task py-search."""

from __future__ import annotations

import pytest

from tasks_demo.store import TaskNotFound, TaskStore


@pytest.fixture
def store(tmp_path):
    store = TaskStore(tmp_path / "tasks.json")
    for title in ("Buy milk", "call Mum", "write report"):
        store.add(title)
    return store

def test_search_ignores_case(store):
    assert [t.id for t in store.search("MUM")] == [2]


def test_search_keeps_the_order_of_adding(store):
    assert [t.id for t in store.search("i")] == [1, 3]


def test_no_match_is_empty(store):
    assert store.search("zebra") == []
