"""Evidence collected automatically from the run store: test runs, reviews, approvals, an export of the
audit log, the last dependency scan. Each item's content is exported as canonical JSON to
``.aigentflow/compliance/evidence/<sha256>.json`` and recorded with that hash; collecting again adds only
what changed (the same kind, source and hash is never recorded twice)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aigentflow.compliance.checks import DEPS_SCAN_FILE
from aigentflow.compliance.records import Evidence, evidence_items
from aigentflow.project.paths import ProjectPaths
from aigentflow.redact import Redactor
from aigentflow.store.rows import now_iso

KINDS = ("test_run", "review", "approval", "audit_export", "deps_scan")


@dataclass(frozen=True)
class Item:
    kind: str
    source: str
    recorded_at: str | None
    summary: str
    content: Any


def _steps(conn: sqlite3.Connection) -> Iterator[sqlite3.Row]:
    yield from conn.execute("SELECT run_id, step, attempt, output_json, finished_at FROM steps "
                            "WHERE status = 'completed' AND output_json IS NOT NULL ORDER BY run_id, step, attempt")


def _items(paths: ProjectPaths, conn: sqlite3.Connection) -> Iterator[Item]:
    for row in _steps(conn):
        try:
            output = json.loads(row["output_json"])
        except json.JSONDecodeError:
            continue
        tasks = output.get("tasks") if isinstance(output, dict) else None
        source = f"run {row['run_id']} step {row['step']}#{row['attempt']}"
        for task_id, task in sorted(tasks.items()) if isinstance(tasks, dict) else []:
            if not isinstance(task, dict):
                continue
            if task.get("tests"):
                yield Item("test_run", f"{source} task {task_id}", row["finished_at"],
                           f"tests of task {task_id}: {task.get('status', '?')}", task["tests"])
            for number, review in enumerate(task.get("reviews") or [], start=1):
                verdict = review.get("verdict", "?") if isinstance(review, dict) else "?"
                yield Item("review", f"{source} task {task_id} review {number}", row["finished_at"],
                           f"review of task {task_id}: {verdict}", review)
        if row["step"] == "review":
            verdict = output.get("verdict", "?") if isinstance(output, dict) else "?"
            yield Item("review", source, row["finished_at"], f"review: {verdict}", output)
    for row in conn.execute("SELECT seq, run_id, from_state, to_state, event, reason, at FROM transitions "
                            "WHERE event IN ('APPROVE', 'REJECT') ORDER BY seq"):
        yield Item("approval", f"run {row['run_id']} transition {row['seq']}", row["at"],
                   f"{row['event'].lower()}: {row['from_state']} -> {row['to_state']}", dict(row))
    for row in conn.execute("SELECT seq, event, at, data_json FROM audit WHERE event LIKE 'evolve.%' "
                            "OR event LIKE '%approv%' OR event LIKE '%reject%' ORDER BY seq"):
        yield Item("approval", f"audit {row['seq']}", row["at"], row["event"],
                   {"seq": row["seq"], "event": row["event"], "at": row["at"], "data": json.loads(row["data_json"])})
    entries = [dict(r) for r in conn.execute("SELECT seq, tenant_id, run_id, event, at, data_json FROM audit "
                                             "WHERE event != 'compliance.evidence' ORDER BY seq")]
    if entries:
        yield Item("audit_export", f"audit log seq {entries[0]['seq']}..{entries[-1]['seq']}", entries[-1]["at"],
                   f"{len(entries)} audit entries", entries)
    scan = paths.state_dir / DEPS_SCAN_FILE
    if scan.is_file():
        try:
            result = json.loads(scan.read_text(encoding="utf-8"))
            yield Item("deps_scan", str(scan.relative_to(paths.root)), result.get("scanned_at"),
                       f"{len(result.get('findings') or [])} findings", result)
        except (OSError, json.JSONDecodeError, AttributeError):
            pass


def canonical(content: Any) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


@dataclass(frozen=True)
class Collected:
    added: list[Evidence]
    seen: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"added": [e.to_dict() for e in self.added], "seen": self.seen, "seconds": round(self.seconds, 3)}


def collect(paths: ProjectPaths, conn: sqlite3.Connection) -> Collected:
    """Record every evidence item not yet recorded with the same kind, source and content hash."""
    import time

    started = time.perf_counter()
    redactor = Redactor.from_environment()
    folder = paths.state_dir / "compliance" / "evidence"
    folder.mkdir(parents=True, exist_ok=True)
    known = {(e.kind, e.source, e.sha256) for e in evidence_items(conn)}
    added: list[Evidence] = []
    seen = 0
    items = list(_items(paths, conn))
    at = now_iso()
    conn.execute("BEGIN IMMEDIATE")
    try:
        for item in items:
            seen += 1
            data = canonical(redactor.redact(item.content))
            digest = hashlib.sha256(data).hexdigest()
            if (item.kind, item.source, digest) in known:
                continue
            known.add((item.kind, item.source, digest))
            exported = folder / f"{digest}.json"
            if not exported.exists():
                exported.write_bytes(data)
            cursor = conn.execute(
                "INSERT INTO compliance_evidence (kind, source, sha256, recorded_at, collected_at, summary) "
                "VALUES (?,?,?,?,?,?)", (item.kind, item.source, digest, item.recorded_at, at, item.summary))
            added.append(Evidence(int(cursor.lastrowid or 0), item.kind, item.source, digest, item.recorded_at, at,
                                  item.summary))
        if added:
            conn.execute("INSERT INTO audit (run_id, event, at, data_json) VALUES (NULL, 'compliance.evidence', ?, ?)",
                         (at, json.dumps({"added": len(added)})))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return Collected(added, seen, time.perf_counter() - started)


def verify(paths: ProjectPaths, item: Evidence) -> bool:
    """Whether the exported content of ``item`` is still there with its recorded hash."""
    exported = paths.state_dir / "compliance" / "evidence" / f"{item.sha256}.json"
    return exported.is_file() and hashlib.sha256(exported.read_bytes()).hexdigest() == item.sha256
