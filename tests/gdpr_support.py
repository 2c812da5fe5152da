"""Planting a data subject everywhere aigentflow keeps data, and searching every byte for it afterwards."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path

SUBJECT = "alice.smith@example.com"
ALIAS = "Alice Smith"
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "core.hooksPath=/dev/null",
       "-c", "commit.gpgsign=false"]


def _git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}).stdout.strip()


def _span(run_id: str, span_id: str, start_ns: int, name: str, attributes: dict[str, object]) -> dict[str, object]:
    return {"span_id": span_id, "trace_id": "ab" * 16, "parent_id": None, "run_id": run_id, "tenant_id": "default",
            "name": name, "kind": "INTERNAL", "start_ns": start_ns, "end_ns": start_ns + 1000, "status": "ok",
            "error": None, "attributes": attributes}


def plant(root: Path, run_id: str, *, spelled: str = "Alice.Smith@EXAMPLE.com") -> None:
    """The subject (as ``spelled``: matching is case-insensitive) in the audit log, a compacted trace and a
    trace segment, evolution's findings, a run output, a run worktree (a tracked and an untracked file) and
    a commit of the run's own branch (author and message)."""
    from aigentflow.store.sqlite import SQLiteRunStore
    from aigentflow.tracing.writer import SegmentWriter, compact

    state = root / ".aigentflow"
    with SQLiteRunStore(state / "state.db") as store:
        store.append_audit("support.ticket", run_id, {"reporter": spelled, "note": f"{ALIAS} asked for due dates"})
    now = time.time_ns()
    with SegmentWriter(state / "traces", None) as writer:
        writer.add(_span(run_id, "1" * 16, now, f"support {spelled}", {"user.email": spelled, "n": 1}))
    compact(state / "traces")
    with SegmentWriter(state / "traces", None) as writer:
        writer.add(_span(run_id, "2" * 16, now + 5, "event", {"events": [{"name": "mail", "to": spelled.upper()}]}))
    with sqlite3.connect(state / "evolution.db") as findings:
        findings.execute("CREATE TABLE IF NOT EXISTS findings (id INTEGER PRIMARY KEY, kind TEXT, detail TEXT)")
        findings.execute("INSERT INTO findings (kind, detail) VALUES (?, ?)", ("slow-step", f"seen by {spelled}"))
    outputs = state / "runs" / run_id
    outputs.mkdir(parents=True, exist_ok=True)
    (outputs / "notes.md").write_text(f"# Notes\n\nContact: {spelled}\n")
    branch = f"aigentflow/{run_id}/planted"
    worktree = state / "worktrees" / run_id / "planted"
    _git(root, "worktree", "add", "-q", "-b", branch, str(worktree), "main")
    (worktree / "CONTACT.md").write_text(f"Maintainer: {ALIAS} <{spelled}>\n")
    _git(worktree, "add", "CONTACT.md")
    _git(worktree, "commit", "-qm", f"docs: contact {spelled}",
         env={"GIT_AUTHOR_NAME": ALIAS, "GIT_AUTHOR_EMAIL": spelled})
    (worktree / "scratch.txt").write_text(f"untracked: {spelled}\n")


def residue(root: Path, needles: tuple[str, ...] = (SUBJECT, ALIAS)) -> list[str]:
    """Every file under ``root`` whose bytes name a needle (case-insensitively), SQLite and DuckDB files and
    their WALs included; and every git object (decompressed) that does, but those the user's own history
    reaches (``git rev-list --objects`` of every ref outside aigentflow/*)."""
    pattern = re.compile(b"|".join(re.escape(n.encode()) for n in needles), re.IGNORECASE)
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            if pattern.search(path.read_bytes()):
                found.append(str(path.relative_to(root)))
    if (root / ".git").exists():
        listing = _git(root, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)").split()
        refs = [r for r in _git(root, "for-each-ref", "--format=%(refname)").split()
                if not r.startswith("refs/heads/aigentflow/")]
        users = {line.split()[0] for line in _git(root, "rev-list", "--objects", *refs, "--").splitlines() if line}
        for sha in listing:
            if sha in users:
                continue
            content = subprocess.run(["git", "cat-file", "-p", sha], cwd=root, capture_output=True, check=True).stdout
            if pattern.search(content):
                found.append(f"git object {sha}")
    return found
