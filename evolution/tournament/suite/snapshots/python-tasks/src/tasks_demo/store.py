"""Tasks kept in one JSON file: add, list and complete."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path


class TaskNotFound(KeyError):
    """No task has the requested id."""


@dataclass
class Task:
    """One thing to do."""

    id: int
    title: str
    done: bool = False


class TaskStore:
    """The tasks saved in one JSON file; the file is created on the first save."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def load(self) -> list[Task]:
        """Every task, in the order they were added."""
        if not self.path.exists():
            return []
        return [Task(**item) for item in json.loads(self.path.read_text(encoding="utf-8"))]

    def save(self, tasks: list[Task]) -> None:
        """Replace the file's contents with ``tasks``."""
        data = [asdict(task) for task in tasks]
        self.path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    def add(self, title: str) -> Task:
        """Add a new, open task and return it."""
        title = title.strip()
        if not title:
            raise ValueError("a task needs a title")
        tasks = self.load()
        task = Task(id=max((t.id for t in tasks), default=0) + 1, title=title)
        self.save([*tasks, task])
        return task

    def list(self, include_done: bool = True) -> list[Task]:
        """The tasks, optionally leaving out the completed ones."""
        return [task for task in self.load() if include_done or not task.done]

    def complete(self, task_id: int) -> Task:
        """Mark the task ``task_id`` as done and return it."""
        tasks = self.load()
        for task in tasks:
            if task.id == task_id:
                task.done = True
                self.save(tasks)
                return task
        raise TaskNotFound(task_id)
