"""Retention: what is older than the ``gdpr.retention_*_days`` policy goes (0 keeps it forever).

- traces: segment files whose spans all ended before the cutoff (the name starts with its write time), and
  the compacted ``traces.duckdb`` rows that ended before it (the file is rebuilt, so nothing old is left);
- outputs: ``.aigentflow/runs/<run>/`` of runs finished before the cutoff (or not in the store and not
  modified since);
- worktrees: the worktrees and branches of runs finished before the cutoff, through ``aigentflow.run.gc``
  (a run a live process owns is never touched).

Every pass that removes something leaves a ``gdpr.retention`` audit entry. Scheduling: run
``aigentflow gdpr retention`` from cron (``0 3 * * * cd /repo && aigentflow gdpr retention``), or set
``gdpr.retention_after_runs = true`` to apply it at the end of every ``aigentflow run``.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UnknownRun
from aigentflow.project.paths import ProjectPaths

FINISHED = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


@dataclass
class RetentionReport:
    dry_run: bool
    policy: dict[str, int]
    removed: dict[str, list[str]] = field(default_factory=lambda: {"traces": [], "outputs": [], "worktrees": []})
    spans_removed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finished_before(run: Any, cutoff: float) -> bool:
    if run.state not in FINISHED or not run.finished_at:
        return False
    finished = datetime.fromisoformat(run.finished_at)
    if finished.tzinfo is None:
        finished = finished.replace(tzinfo=UTC)
    return finished.timestamp() < cutoff


def _cutoff(days: int, now: float) -> float | None:
    return now - days * 86400 if days > 0 else None


def apply_retention(paths: ProjectPaths, settings: Any, *, dry_run: bool = False, now: float | None = None
                    ) -> RetentionReport:
    from aigentflow.store.sqlite import SQLiteRunStore

    now = time.time() if now is None else now
    policy = {"traces_days": settings.retention_traces_days, "outputs_days": settings.retention_outputs_days,
              "worktrees_days": settings.retention_worktrees_days}
    report = RetentionReport(dry_run, policy)
    with SQLiteRunStore(paths.database) as store:
        if (cutoff := _cutoff(policy["traces_days"], now)) is not None:
            _traces(paths, cutoff, report)
        if (cutoff := _cutoff(policy["outputs_days"], now)) is not None:
            _outputs(paths, store, cutoff, report)
        if (cutoff := _cutoff(policy["worktrees_days"], now)) is not None:
            _worktrees(paths, store, cutoff, report)
        if not dry_run and (any(report.removed.values()) or report.spans_removed):
            store.append_audit("gdpr.retention", None, {"policy": policy, "spans_removed": report.spans_removed,
                                                        **{k: len(v) for k, v in report.removed.items()}})
    return report


def _traces(paths: ProjectPaths, cutoff: float, report: RetentionReport) -> None:
    from aigentflow.tracing.writer import DATABASE_FILENAME, compaction_lock, list_segments

    if not paths.traces_dir.is_dir():
        return
    with compaction_lock(paths.traces_dir):
        for segment in list_segments(paths.traces_dir):
            stamp = segment.name.split("-", 1)[0]
            written = int(stamp) / 1e9 if stamp.isdigit() else segment.stat().st_mtime
            if written < cutoff:
                report.removed["traces"].append(segment.relative_to(paths.root).as_posix())
                if not report.dry_run:
                    segment.unlink(missing_ok=True)
        database = paths.traces_dir / DATABASE_FILENAME
        if database.exists():
            report.spans_removed = _prune_database(database, int(cutoff * 1e9), report.dry_run)


def _prune_database(database: Path, cutoff_ns: int, dry_run: bool) -> int:
    import duckdb

    with duckdb.connect(str(database), read_only=dry_run) as connection:
        old = connection.execute("SELECT count(*) FROM spans WHERE end_ns < ?", [cutoff_ns]).fetchone()[0]
    if dry_run or not old:
        return int(old)
    temporary = database.with_name(f".{database.name}.retention.tmp")
    temporary.unlink(missing_ok=True)
    with duckdb.connect() as connection:
        connection.execute(f"ATTACH '{database}' AS db (READ_ONLY)")
        connection.execute(f"ATTACH '{temporary}' AS fresh")
        connection.execute("CREATE TABLE fresh.spans AS SELECT * FROM db.spans WHERE end_ns >= ?", [cutoff_ns])
        connection.execute("DETACH fresh")
    os.replace(temporary, database)
    return int(old)


def _outputs(paths: ProjectPaths, store: Any, cutoff: float, report: RetentionReport) -> None:
    if not paths.runs_dir.is_dir():
        return
    for directory in sorted(p for p in paths.runs_dir.iterdir() if p.is_dir()):
        try:
            run = store.get_run(directory.name)
            old = _finished_before(run, cutoff)
        except UnknownRun:
            old = directory.stat().st_mtime < cutoff
        if old:
            report.removed["outputs"].append(directory.relative_to(paths.root).as_posix())
            if not report.dry_run:
                shutil.rmtree(directory)


def _worktrees(paths: ProjectPaths, store: Any, cutoff: float, report: RetentionReport) -> None:
    from aigentflow.gitops.worktrees import Worktrees
    from aigentflow.run import gc

    trees = Worktrees(paths.root)
    for run_id in gc.run_ids(trees):
        try:
            run = store.get_run(run_id)
        except UnknownRun:
            continue  # abandoned runs are `aigentflow gc`'s
        if not _finished_before(run, cutoff):
            continue
        remove, _ = gc.plan_run(trees, run_id, run, everything=True)
        for target in remove:
            report.removed["worktrees"].append(f"{target.kind}:{target.name}")
            if not report.dry_run:
                gc._remove(trees, target)
        run_dir = trees.dir / run_id
        if not report.dry_run and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
