"""What the dashboards read, once per refresh: the run store (read-only) and the project's spans.

Nothing here writes: the store is opened ``readonly=True`` and the traces are counted by DuckDB over the
segments and the compacted database, attached read-only (no lock that blocks a writer), so dashboards work
while runs write and never hold a project's spans in memory.
A store or trace directory that cannot be read is kept as a problem (the health figure reports it),
not raised, so the other figures still show what they can.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aigentflow.project.paths import ProjectPaths
from aigentflow.store.records import AuditRecord, RunRecord, StepRecord, TransitionRecord

ALL_RUNS = 1_000_000


@dataclass
class SpanCounts:
    """What the figures need of the spans, counted by DuckDB over the trace files (never the spans themselves:
    a big project has millions)."""

    total: int = 0
    state_targets: Counter = field(default_factory=Counter)
    """(run id, ``aigentflow.state.to``) -> state and transition spans."""
    model_calls: Counter = field(default_factory=Counter)
    """Run id -> ``chat`` spans."""
    roots: set[str] = field(default_factory=set)
    """Runs with their root span."""


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
    spans: SpanCounts = field(default_factory=SpanCounts)
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
        from aigentflow.emergency import OPERATOR_TENANT, PAUSE_ALL

        data.pause_all = bool(store.get_control(PAUSE_ALL, False, tenant_id=OPERATOR_TENANT))
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


_COUNTS = """
    SELECT kind, CASE WHEN kind IN ('state', 'transition', 'model', 'run') THEN run_id END AS run,
           CASE WHEN kind IN ('state', 'transition') THEN json_extract_string(attributes, '$."aigentflow.state.to"')
           END AS target, count(*) AS n
    FROM ({spans}) GROUP BY ALL
"""


def _read_traces(data: ProjectData) -> None:
    import duckdb

    from aigentflow.exceptions import AigentflowError
    from aigentflow.tracing.reader import COMPACTOR_WAIT_S
    from aigentflow.tracing.writer import DATABASE_FILENAME, compaction_lock, list_segments, sql_literal

    trace_dir = data.paths.traces_dir
    if not trace_dir.exists():
        return
    try:
        with compaction_lock(trace_dir, shared=True, wait_s=COMPACTOR_WAIT_S):
            connection = duckdb.connect(config={"memory_limit": "2GB"})
            try:
                sources: list[str] = []
                compacted = _attach(connection, trace_dir / DATABASE_FILENAME, sql_literal)
                if compacted:
                    sources.append("SELECT span_id, run_id, kind, attributes FROM compacted.spans")
                segments = list_segments(trace_dir)
                if segments:
                    files = ", ".join(f"'{sql_literal(path)}'" for path in segments)
                    # A span is in one segment; it can be in the database too only for the moment between a
                    # compaction's commit and its deleting the segments.
                    unmerged = ("WHERE NOT EXISTS (SELECT 1 FROM compacted.spans c WHERE c.span_id = s.span_id)"
                                if compacted else "")
                    sources.append(f"SELECT span_id, run_id, kind, attributes FROM read_parquet([{files}], "
                                   f"union_by_name := true) s {unmerged}")
                rows = connection.execute(_COUNTS.format(spans=" UNION ALL ".join(sources))).fetchall() \
                    if sources else []
            finally:
                connection.close()
    except (AigentflowError, duckdb.Error, OSError) as exc:
        data.traces_problem = f"the traces in {trace_dir} could not be read: {exc}"
        return
    counts = data.spans
    for kind, run, target, n in rows:
        counts.total += n
        if kind in ("state", "transition"):
            counts.state_targets[(run, target)] += n
        elif kind == "model":
            counts.model_calls[run] += n
        elif kind == "run":
            counts.roots.add(run)


def _attach(connection: Any, database: Path, sql_literal: Any) -> bool:
    """Attach ``traces.duckdb`` read-only as ``compacted``; False when absent, held by a writer, or without spans."""
    import duckdb

    if not database.exists():
        return False
    try:
        connection.execute(f"ATTACH '{sql_literal(database)}' AS compacted (READ_ONLY)")
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            return False
        raise
    return bool(connection.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'compacted' "
                                   "AND table_name = 'spans'").fetchone()[0])


def project_paths(project: Path | None) -> ProjectPaths:
    """The initialised project at (or containing) ``project``, default the working directory;
    ``NotAGitRepository`` / ``NotInitialized`` (exit 2) otherwise."""
    from aigentflow.project.paths import locate_project

    if project is not None and not Path(project).exists():
        from aigentflow.exceptions import UsageError

        raise UsageError(f"{project} does not exist; pass the directory of an aigentflow project.")
    return locate_project(Path(project) if project is not None else None)
