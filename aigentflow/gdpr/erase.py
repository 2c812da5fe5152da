"""`aigentflow gdpr erase`: the subject replaced everywhere ``search`` finds it, crash-safely.

1. The plan is written first: ``.aigentflow/gdpr/journal/<request>.json`` lists every unit to rewrite
   (a database, a trace segment, a file, a run branch), with the subject hash and never the subject.
2. Each unit is rewritten and then marked applied in the journal. A rewrite replaces whatever still names
   the subject, so redoing a unit that a crash interrupted (or that was already done) is harmless.
3. Git's unreachable objects are dropped (``git.finish``), this subject's export archives deleted.
4. A verification search runs; what it still finds (a run writing meanwhile) becomes more units, up to
   ``PASSES`` times. Only a verification that finds nothing marks the request done, with a ``gdpr.erased``
   audit entry (subject hash, counts per location). Rerunning the same erase after a crash continues the
   unfinished request from its journal.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigentflow import faults
from aigentflow.exceptions import UsageError
from aigentflow.gdpr import databases, files, git, requests
from aigentflow.gdpr.hits import LOCATIONS
from aigentflow.gdpr.search import Findings, search
from aigentflow.gdpr.subject import Subject, gdpr_dir
from aigentflow.project.paths import ProjectPaths

PASSES = 3


@dataclass
class EraseResult:
    request: requests.DsarRecord
    mode: str
    counts: dict[str, int]
    units: int
    resumed: bool
    user_history: int
    seconds: float
    remaining: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"request": self.request.to_dict(), "mode": self.mode, "counts": self.counts, "units": self.units,
                "resumed": self.resumed, "user_history": self.user_history, "seconds": round(self.seconds, 3),
                "remaining": self.remaining}


def journal_path(paths: ProjectPaths, request_id: str) -> Path:
    return gdpr_dir(paths.state_dir) / "journal" / f"{request_id}.json"


def _save(path: Path, journal: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w") as handle:
        json.dump(journal, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _units(findings: Findings) -> list[dict[str, Any]]:
    return [{"kind": u.kind, "path": u.path, "location": u.location, "hits": len(u.hits), "applied": False}
            for u in findings.units]


def _apply(paths: ProjectPaths, unit: dict[str, Any], subject: Subject, replacement: str,
           rewriter: git.Rewriter) -> None:
    kind, relative = unit["kind"], unit["path"]
    if kind == "git-branch":
        if rewriter.branch(relative) is not None:
            worktree = git.checked_out(paths.root).get(relative)
            if worktree is not None:
                git.refresh_worktree(worktree)
        return
    path = paths.root / relative
    if not path.exists():
        return
    if kind == "sqlite":
        databases.erase_sqlite(path, subject, replacement)
    elif kind in ("duckdb", "parquet"):
        from aigentflow.tracing.writer import compaction_lock

        with compaction_lock(paths.traces_dir):  # no compactor merges a segment while it is rewritten
            (databases.erase_duckdb if kind == "duckdb" else databases.erase_parquet)(path, subject, replacement)
    else:
        files.erase_file(path, subject, replacement)


def _refuse_live_runs(paths: ProjectPaths) -> None:
    from aigentflow.store.sqlite import SQLiteRunStore

    with SQLiteRunStore(paths.database) as store:
        live = [r.id for r in store.list_runs(limit=1000) if r.owner_pid and r.owner_alive_here()]
    if live:
        raise UsageError(f"runs {', '.join(live)} are going right now; an erasure rewrites the files they write. "
                         "Wait for them (or pause them: `aigentflow admin emergency --pause-all`), then erase.")


def erase(paths: ProjectPaths, subject: Subject, *, pseudonymise: bool = False, tenant_id: str = "default"
          ) -> EraseResult:
    started = time.monotonic()
    _refuse_live_runs(paths)
    faults.install(faults.from_environment())
    request = requests.open_request(paths.database, subject.hash, "erase", tenant_id)
    journal_file = journal_path(paths, request.id)
    resumed = journal_file.exists()
    if resumed:
        journal = json.loads(journal_file.read_text())
    else:
        findings = search(paths, subject)
        journal = {"request": request.id, "subject_hash": subject.hash,
                   "mode": "pseudonymise" if pseudonymise else "erase", "units": _units(findings),
                   "counts": findings.counts(), "user_history": len(findings.user_history), "git_finished": False}
        _save(journal_file, journal)
    mode = journal["mode"]
    replacement = subject.replacement(mode == "pseudonymise")
    rewriter = git.Rewriter(paths.root, subject, replacement)
    applied = 0
    remaining: list[str] = []
    for _ in range(PASSES):
        for unit in journal["units"]:
            if unit["applied"]:
                continue
            applied += 1
            faults.point("gdpr.erase", applied)
            _apply(paths, unit, subject, replacement, rewriter)
            unit["applied"] = True
            _save(journal_file, journal)
        if any(u["kind"] == "git-branch" for u in journal["units"]) and not journal["git_finished"]:
            git.finish(paths.root, paths.state_dir / "worktrees")
            journal["git_finished"] = True
            _save(journal_file, journal)
        for archive in (gdpr_dir(paths.state_dir) / "exports").glob(f"*-{subject.hash8}.zip"):
            archive.unlink(missing_ok=True)
        check = search(paths, subject)
        remaining = [u.key for u in check.units]
        if not remaining:
            break
        known = {(u["kind"], u["path"]) for u in journal["units"]}
        for unit in _units(check):
            if (unit["kind"], unit["path"]) in known:  # rewritten, yet still naming the subject: redo it
                next(u for u in journal["units"] if (u["kind"], u["path"]) == (unit["kind"], unit["path"]))[
                    "applied"] = False
            else:
                journal["units"].append(unit)
                for hit in (h for u in check.units if u.key == f"{unit['kind']}:{unit['path']}" for h in u.hits):
                    journal["counts"][hit.location] = journal["counts"].get(hit.location, 0) + 1
        journal["git_finished"] = False
        _save(journal_file, journal)
    counts = {k: journal["counts"].get(k, 0) for k in LOCATIONS}
    summary = {"mode": mode, "counts": counts, "units": len(journal["units"]), "user_history": journal["user_history"]}
    if remaining:
        summary["remaining"] = remaining
        done = requests.complete_request(paths.database, request.id, summary, status="failed")
        return EraseResult(done, mode, counts, len(journal["units"]), resumed, journal["user_history"],
                           time.monotonic() - started, remaining)
    from aigentflow.store.sqlite import SQLiteRunStore

    with SQLiteRunStore(paths.database) as store:
        store.append_audit("gdpr.erased", None, {"request": request.id, "subject_hash": subject.hash, **summary},
                           tenant_id=tenant_id)
    done = requests.complete_request(paths.database, request.id, summary)
    journal_file.unlink(missing_ok=True)
    return EraseResult(done, mode, counts, len(journal["units"]), resumed, journal["user_history"],
                       time.monotonic() - started)
