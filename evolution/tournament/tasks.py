"""Benchmark tasks: a repository snapshot, a request for one role, and hidden grading.

A task is a folder with ``task.toml`` and ``hidden/`` (the grading tests, copied into the snapshot
only after the version's edits are applied, so the agent never sees them)::

    title = "Remove a task"
    language = "python"                  # or "javascript"
    snapshot = "python-tasks"            # a shipped snapshot (suite/snapshots/<name>), or "repo": ./repo/
    role = "backend_developer"
    request = "..."                      # the feature request
    description = "..."                  # the work-breakdown task the role gets
    acceptance_criteria = ["..."]
    grade_command = "{python} -m pytest -q tests/test_hidden.py"   # {python}: this interpreter

The shipped suite is ``evolution/tournament/suite/``; a project adds (or overrides, by id) tasks in
``.aigentflow/benchmarks/<id>/``. A broken task is a ``UsageError`` naming its file and field.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UsageError

SUITE_DIR = Path(__file__).parent / "suite"
SNAPSHOTS_DIR = SUITE_DIR / "snapshots"
LANGUAGES = ("python", "javascript")
MAX_FILE_BYTES = 20_000
"""Files of a snapshot shown to the agent (small text files only)."""


@dataclass(frozen=True)
class BenchmarkTask:
    id: str
    title: str
    language: str
    role: str
    request: str
    description: str
    acceptance_criteria: tuple[str, ...]
    grade_command: str
    snapshot_dir: Path
    hidden_dir: Path
    source: str
    """``shipped`` or the task folder's path."""

    def work_item(self) -> dict[str, Any]:
        """The work-breakdown task the role is given (``call.inputs["task"]``)."""
        return {"id": self.id, "type": "backend", "title": self.title, "description": self.description,
                "acceptance_criteria": list(self.acceptance_criteria), "depends_on": []}

    def files(self) -> dict[str, str]:
        """The snapshot's text files by relative path: what the agent sees of the repository."""
        shown: dict[str, str] = {}
        for path in sorted(self.snapshot_dir.rglob("*")):
            if path.is_file() and path.stat().st_size <= MAX_FILE_BYTES and "__pycache__" not in path.parts:
                try:
                    shown[path.relative_to(self.snapshot_dir).as_posix()] = path.read_text(encoding="utf-8")
                except UnicodeDecodeError:
                    continue
        return shown

    def command(self) -> str:
        return self.grade_command.replace("{python}", sys.executable)

    def materialize(self, target: Path) -> Path:
        """A fresh copy of the snapshot at ``target`` (no hidden tests yet)."""
        shutil.copytree(self.snapshot_dir, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return target

    def add_hidden_tests(self, target: Path) -> list[str]:
        added = []
        for path in sorted(self.hidden_dir.rglob("*")):
            if path.is_file():
                relative = path.relative_to(self.hidden_dir)
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target / relative)
                added.append(relative.as_posix())
        return added


def load_task(folder: Path, source: str) -> BenchmarkTask:
    where = folder / "task.toml"
    try:
        data = tomllib.loads(where.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"benchmark task {where}: cannot be read: {exc}") from None

    def need(name: str) -> str:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"benchmark task {where}: {name}: missing (a non-empty string)")
        return value

    language = need("language")
    if language not in LANGUAGES:
        raise UsageError(f"benchmark task {where}: language: {language!r}; choose {', '.join(LANGUAGES)}")
    snapshot = need("snapshot")
    snapshot_dir = folder / "repo" if snapshot == "repo" else SNAPSHOTS_DIR / snapshot
    if not snapshot_dir.is_dir():
        raise UsageError(f"benchmark task {where}: snapshot: {snapshot_dir} does not exist (give \"repo\" and a "
                         f"repo/ folder beside task.toml, or a shipped one: "
                         f"{', '.join(sorted(p.name for p in SNAPSHOTS_DIR.iterdir()))})")
    hidden = folder / "hidden"
    if not hidden.is_dir() or not any(p.is_file() for p in hidden.rglob("*")):
        raise UsageError(f"benchmark task {where}: hidden/: no grading tests (the task cannot be graded)")
    criteria = data.get("acceptance_criteria", [])
    if not isinstance(criteria, list) or not all(isinstance(c, str) for c in criteria):
        raise UsageError(f"benchmark task {where}: acceptance_criteria: a list of strings")
    return BenchmarkTask(
        id=folder.name, title=need("title"), language=language, role=need("role"), request=need("request"),
        description=need("description"), acceptance_criteria=tuple(criteria), grade_command=need("grade_command"),
        snapshot_dir=snapshot_dir, hidden_dir=hidden, source=source,
    )


def load_suite(benchmarks_dir: Path | None = None) -> dict[str, BenchmarkTask]:
    """The shipped tasks plus a project's (``.aigentflow/benchmarks/``; same id: the project's wins)."""
    tasks = {f.name: load_task(f, "shipped") for f in sorted(SUITE_DIR.iterdir())
             if f.is_dir() and (f / "task.toml").is_file()}
    if benchmarks_dir is not None and benchmarks_dir.is_dir():
        for folder in sorted(benchmarks_dir.iterdir()):
            if folder.is_dir():
                tasks[folder.name] = load_task(folder, str(folder))
    return tasks


def tasks_for(role: str, benchmarks_dir: Path | None = None) -> list[BenchmarkTask]:
    """The tasks of ``role``, by id; a UsageError when it has none."""
    suite = load_suite(benchmarks_dir)
    found = [t for t in suite.values() if t.role == role]
    if not found:
        roles = sorted({t.role for t in suite.values()})
        raise UsageError(f"no benchmark tasks for role {role!r}; tasks exist for: {', '.join(roles)} (add yours "
                         "in .aigentflow/benchmarks/<id>/task.toml)")
    return found
