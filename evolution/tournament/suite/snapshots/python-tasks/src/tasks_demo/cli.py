"""The `tasks` command: add, list and complete tasks."""

from __future__ import annotations

import argparse
import os
import sys

from tasks_demo.store import TaskNotFound, TaskStore


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface: `tasks [--file PATH] add|list|done`."""
    parser = argparse.ArgumentParser(prog="tasks", description="A tiny to-do list.")
    parser.add_argument(
        "--file",
        default=os.environ.get("TASKS_FILE", "tasks.json"),
        help="the JSON file holding the tasks (default: $TASKS_FILE or tasks.json)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add a task")
    add.add_argument("title", help="what there is to do")
    listing = commands.add_parser("list", help="list the tasks")
    listing.add_argument("--open", action="store_true", help="leave out completed tasks")
    done = commands.add_parser("done", help="mark a task as completed")
    done.add_argument("id", type=int, help="the task's number, as shown by `tasks list`")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command and return the process exit code."""
    args = build_parser().parse_args(argv)
    store = TaskStore(args.file)
    if args.command == "add":
        try:
            task = store.add(args.title)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"Added task {task.id}: {task.title}")
    elif args.command == "list":
        for task in store.list(include_done=not args.open):
            print(f"[{'x' if task.done else ' '}] {task.id}  {task.title}")
    elif args.command == "done":
        try:
            task = store.complete(args.id)
        except TaskNotFound:
            print(f"error: there is no task {args.id}; see `tasks list`", file=sys.stderr)
            return 1
        print(f"Completed task {task.id}: {task.title}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
