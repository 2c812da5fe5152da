"""Findings in ``.aigentflow/evolution.db`` (SQLite, WAL): written by ``patterns mine``, read by
``patterns list`` and the web UI (``read_findings``) while a mining run writes.

A finding is identified by (kind, key). Mining again updates its count, last_seen, score and evidence
and keeps its first_seen: a mining run over all history replaces the count; one limited by ``--since``
(which sees only part of the history) never lowers it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from evolution.db import DATABASE, connect, database_path, now_iso  # noqa: F401 - this module's API too

MAX_EVIDENCE = 50
"""Span ids and run ids kept per finding (the most recent); the count is always the full count."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS findings (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    title TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    score REAL NOT NULL,
    span_ids_json TEXT NOT NULL,
    run_ids_json TEXT NOT NULL,
    details_json TEXT NOT NULL,
    mined_at TEXT NOT NULL,
    times_mined INTEGER NOT NULL DEFAULT 1,
    UNIQUE (kind, key)
);
CREATE INDEX IF NOT EXISTS findings_by_kind ON findings(kind, score DESC);
"""


def finding_id(kind: str, key: str) -> str:
    """A short id that names a finding across mining runs (for links and ``--json`` consumers)."""
    return hashlib.sha256(f"{kind}\x00{key}".encode()).hexdigest()[:12]


def _connect(path: Path, *, readonly: bool) -> Any:
    return connect(path.parent.parent, _SCHEMA, readonly=readonly, timeout_s=5.0)



def _merge_ids(new: list[str], old: list[str]) -> list[str]:
    merged = list(dict.fromkeys([*new, *old]))
    return merged[:MAX_EVIDENCE]


def write_findings(project_root: Path, findings: Iterable[dict[str, Any]], *, partial: bool) -> dict[str, int]:
    """Upsert findings by (kind, key) in one transaction; ``partial``: the mining saw only part of the
    history (``--since``), so counts are never lowered. Returns how many were new and updated."""
    path = database_path(project_root)
    stamp = now_iso()
    new = updated = 0
    with _connect(path, readonly=False) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            for f in findings:
                old = db.execute("SELECT * FROM findings WHERE kind=? AND key=?", (f["kind"], f["key"])).fetchone()
                spans, runs = list(f["evidence"]["span_ids"]), list(f["evidence"]["run_ids"])
                if old is None:
                    new += 1
                    db.execute(
                        "INSERT INTO findings (id, kind, key, title, count, first_seen, last_seen, score,"
                        " span_ids_json, run_ids_json, details_json, mined_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                        (finding_id(f["kind"], f["key"]), f["kind"], f["key"], f["title"], f["count"],
                         f["first_seen"], f["last_seen"], f["score"], json.dumps(spans[:MAX_EVIDENCE]),
                         json.dumps(runs[:MAX_EVIDENCE]), json.dumps(f["details"], sort_keys=True), stamp),
                    )
                    continue
                updated += 1
                count = max(old["count"], f["count"]) if partial else f["count"]
                db.execute(
                    "UPDATE findings SET title=?, count=?, first_seen=min(first_seen, ?), last_seen=max(last_seen, ?),"
                    " score=?, span_ids_json=?, run_ids_json=?, details_json=?, mined_at=?,"
                    " times_mined=times_mined+1 WHERE id=?",
                    (f["title"], count, f["first_seen"], f["last_seen"], f["score"],
                     json.dumps(_merge_ids(spans, json.loads(old["span_ids_json"]))),
                     json.dumps(_merge_ids(runs, json.loads(old["run_ids_json"]))),
                     json.dumps(f["details"], sort_keys=True), stamp, old["id"]),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return {"new": new, "updated": updated}


def _as_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"], "kind": row["kind"], "key": row["key"], "title": row["title"], "count": row["count"],
        "first_seen": row["first_seen"], "last_seen": row["last_seen"], "score": row["score"],
        "evidence": {"span_ids": json.loads(row["span_ids_json"]), "run_ids": json.loads(row["run_ids_json"])},
        "details": json.loads(row["details_json"]), "mined_at": row["mined_at"], "times_mined": row["times_mined"],
    }


def read_findings(project_root: Path, kind: str | None = None) -> list[dict[str, Any]]:
    """The stored findings (of one ``kind``: failure, intervention, capability_gap, routing), highest
    score first; an empty list when nothing was mined yet. Read-only: safe while a mining run writes.

    Each is ``{id, kind, key, title, count, first_seen, last_seen, score, evidence: {span_ids, run_ids},
    details, mined_at, times_mined}`` (times are ISO 8601, UTC)."""
    path = database_path(project_root)
    if not path.exists():
        return []
    with _connect(path, readonly=True) as db:
        try:
            if kind is None:
                rows = db.execute("SELECT * FROM findings ORDER BY score DESC, count DESC, id").fetchall()
            else:
                rows = db.execute("SELECT * FROM findings WHERE kind=? ORDER BY score DESC, count DESC, id",
                                  (kind,)).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
    return [_as_dict(r) for r in rows]
