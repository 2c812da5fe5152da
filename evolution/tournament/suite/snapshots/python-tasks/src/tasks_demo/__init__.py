"""A tiny command-line to-do list."""

from tasks_demo.store import Task, TaskNotFound, TaskStore

__all__ = ["Task", "TaskNotFound", "TaskStore"]
