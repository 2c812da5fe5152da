"""What the dashboards read, once per refresh: the run store (read-only) and the project's spans.

Nothing here writes: the store is opened ``readonly=True`` and the traces are read through
``aigentflow.tracing.reader`` (no lock that blocks a writer), so dashboards work while runs write.
A store or trace directory that cannot be read is kept as a problem (the health figure reports it),
not raised, so the other figures still show what they can.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aigentflow.project.paths import ProjectPaths
from aigentflow.store.records import AuditRecord, RunRecord, StepRecord, TransitionRecord

ALL_RUNS = 1_000_000


@dataclass
class ProjectData:
    """A snapshot of one project's runs, steps, transitions, audit log and spans."""

    paths: ProjectPaths
    now: datetime
    runs: list[RunRecord] = field(default_factory=list)
    """Oldest first."""
    steps: dict[str, list[StepRecord]] = field(default_factory=dict)
    transitions: dict[str, list[TransitionRecord]] = field(default_factory=dict)
    audit: list[AuditRecord] = field(default_factory=list)
    spans: list[dict[str, Any]] = field(default_factory=list)
    pause_all: bool = False
    store_problem: str | None = None
    traces_problem: str | None = None

    def all_steps(self) -> list[StepRecord]:
        """Every step attempt of every run, runs oldest first."""
        return [step for run in self.runs for step in self.steps.get(run.id, [])]


def parse_time(text: str | None) -> datetime | None:
    """A store timestamp (ISO 8601, UTC) as an aware datetime; None for None or garbage."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def load(paths: ProjectPaths, now: datetime | None = None) -> ProjectData:
    """Read the project's store and traces."""
    data = ProjectData(paths=paths, now=now or datetime.now(UTC))
    _read_store(data)
    _read_traces(data)
    return data


def _read_store(data: ProjectData) -> None:
    import sqlite3

    from aigentflow.exceptions import AigentflowError
    from aigentflow.store.sqlite import SQLiteRunStore

    try:
        store = SQLiteRunStore(data.paths.database, readonly=True)
    except AigentflowError as exc:
        data.store_problem = str(exc)
        return
    try:
        check = _quick_check(data.paths.database)
        if check != "ok":
            data.store_problem = f"{data.paths.database} fails SQLite's quick_check: {check}"
        data.runs = list(reversed(store.list_runs(limit=ALL_RUNS)))
        for run in data.runs:
            data.steps[run.id] = store.steps(run.id)
            data.transitions[run.id] = store.transitions(run.id)
        data.audit = store.audit()
        data.pause_all = bool(store.get_control("emergency.pause_all", False))
    except (AigentflowError, sqlite3.Error) as exc:
        data.store_problem = f"{data.paths.database} could not be read: {exc}"
    finally:
        store.close()


def _quick_check(database: Path) -> str:
    """SQLite's own check of the database file, on a read-only connection of its own."""
    import sqlite3

    connection = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return str(connection.execute("PRAGMA quick_check").fetchone()[0])
    finally:
        connection.close()


def _read_traces(data: ProjectData) -> None:
    import duckdb

    from aigentflow.exceptions import AigentflowError
    from aigentflow.tracing.reader import read_spans

    if not data.paths.traces_dir.exists():
        return
    try:
        data.spans = read_spans(data.paths.traces_dir)
    except (AigentflowError, duckdb.Error, OSError) as exc:
        data.traces_problem = f"the traces in {data.paths.traces_dir} could not be read: {exc}"


def project_paths(project: Path | None) -> ProjectPaths:
    """The initialised project at (or containing) ``project``, default the working directory;
    ``NotAGitRepository`` / ``NotInitialized`` (exit 2) otherwise."""
    from aigentflow.project.paths import locate_project

    if project is not None and not Path(project).exists():
        from aigentflow.exceptions import UsageError

        raise UsageError(f"{project} does not exist; pass the directory of an aigentflow project.")
    return locate_project(Path(project) if project is not None else None)
