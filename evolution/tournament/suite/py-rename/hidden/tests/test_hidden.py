"""Hidden grading tests of the benchmark task py-rename."""

from __future__ import annotations

import pytest

from tasks_demo.store import TaskNotFound, TaskStore


@pytest.fixture
def store(tmp_path):
    store = TaskStore(tmp_path / "tasks.json")
    for title in ("Buy milk", "call Mum", "write report"):
        store.add(title)
    return store

def test_rename_saves_the_stripped_title(store, tmp_path):
    store.rename(1, "  Buy oat milk ")
    assert TaskStore(tmp_path / "tasks.json").list()[0].title == "Buy oat milk"


def test_empty_title_is_refused(store):
    with pytest.raises(ValueError):
        store.rename(1, "   ")


def test_unknown_id_raises(store):
    with pytest.raises(TaskNotFound):
        store.rename(99, "x")
