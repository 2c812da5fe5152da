"""Tests of the task store and the `tasks` command."""

from __future__ import annotations

import pytest

from tasks_demo.cli import main
from tasks_demo.store import TaskNotFound, TaskStore


def test_added_tasks_get_increasing_ids_and_are_saved(tmp_path):
    store = TaskStore(tmp_path / "tasks.json")
    store.add("buy milk")
    store.add("call mum")

    reopened = TaskStore(tmp_path / "tasks.json")
    assert [(task.id, task.title, task.done) for task in reopened.list()] == [
        (1, "buy milk", False),
        (2, "call mum", False),
    ]


def test_completed_tasks_are_left_out_of_the_open_list(tmp_path):
    store = TaskStore(tmp_path / "tasks.json")
    first = store.add("buy milk")
    store.add("call mum")

    store.complete(first.id)

    assert [task.title for task in store.list(include_done=False)] == ["call mum"]
    assert [task.done for task in store.list()] == [True, False]


def test_completing_an_unknown_task_fails(tmp_path):
    store = TaskStore(tmp_path / "tasks.json")
    with pytest.raises(TaskNotFound):
        store.complete(7)


def test_a_task_needs_a_title(tmp_path):
    store = TaskStore(tmp_path / "tasks.json")
    with pytest.raises(ValueError):
        store.add("   ")
    assert store.list() == []


def test_the_command_adds_lists_and_completes(tmp_path, capsys):
    tasks_file = str(tmp_path / "tasks.json")
    assert main(["--file", tasks_file, "add", "water the plants"]) == 0
    assert main(["--file", tasks_file, "done", "1"]) == 0
    assert main(["--file", tasks_file, "list"]) == 0

    output = capsys.readouterr().out
    assert "Added task 1: water the plants" in output
    assert "[x] 1  water the plants" in output
