"""Findings in ``.aigentflow/evolution.db`` (SQLite, WAL): written by ``patterns mine``, read by
``patterns list`` and the web UI (``read_findings``) while a mining run writes.

A finding belongs to one tenant and is identified by (tenant_id, kind, key). Mining again updates its
count, last_seen, score and evidence and keeps its first_seen: a mining run over all history replaces the
count; one limited by ``--since`` (which sees only part of the history) never lowers it.

Databases written before findings had a tenant (``UNIQUE (kind, key)``, no ``tenant_id``) are rebuilt
once by the first writer (``_add_tenants``): SQLite cannot drop a table's UNIQUE constraint, and the old one
would refuse the same pattern for a second tenant. Their rows become the ``default`` tenant's (the only
tenant there was), ids kept; readers of a database not rebuilt yet see its rows as ``default``'s.
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

_TABLE = """
CREATE TABLE IF NOT EXISTS findings (
    id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL DEFAULT 'default',
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
    UNIQUE (tenant_id, kind, key)
);
"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS findings_by_kind ON findings(kind, score DESC);
CREATE INDEX IF NOT EXISTS findings_by_tenant ON findings(tenant_id, kind, score DESC);
"""
_COPIED = ("id, kind, key, title, count, first_seen, last_seen, score, span_ids_json, run_ids_json, details_json,"
           " mined_at, times_mined")


def finding_id(kind: str, key: str, tenant_id: str = "default") -> str:
    """A short id that names a finding across mining runs (for links and ``--json`` consumers); the
    ``default`` tenant's are those findings had before tenants (so that links to them still work)."""
    text = f"{kind}\x00{key}" if tenant_id == "default" else f"{tenant_id}\x00{kind}\x00{key}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _has_tenants(db: sqlite3.Connection) -> bool:
    return any(row["name"] == "tenant_id" for row in db.execute("PRAGMA table_info(findings)"))


def _add_tenants(db: sqlite3.Connection) -> None:
    """Rebuild a findings table of before tenants (see the module docstring), in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if not _has_tenants(db):  # another writer may have rebuilt it meanwhile
            db.execute("DROP INDEX IF EXISTS findings_by_kind")
            db.execute("ALTER TABLE findings RENAME TO findings_before_tenants")
            db.execute(_TABLE)
            db.execute(f"INSERT INTO findings (tenant_id, {_COPIED}) SELECT 'default', {_COPIED}"
                       " FROM findings_before_tenants")
            db.execute("DROP TABLE findings_before_tenants")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _connect(path: Path, *, readonly: bool) -> Any:
    return connect(path.parent.parent, _TABLE, readonly=readonly, timeout_s=5.0)



def _merge_ids(new: list[str], old: list[str]) -> list[str]:
    merged = list(dict.fromkeys([*new, *old]))
    return merged[:MAX_EVIDENCE]


def write_findings(project_root: Path, findings: Iterable[dict[str, Any]], *, partial: bool) -> dict[str, int]:
    """Upsert findings by (tenant_id, kind, key) in one transaction (a finding without ``tenant_id`` is
    ``default``'s); ``partial``: the mining saw only part of the
    history (``--since``), so counts are never lowered. Returns how many were new and updated."""
    path = database_path(project_root)
    stamp = now_iso()
    new = updated = 0
    with _connect(path, readonly=False) as db:
        if not _has_tenants(db):
            _add_tenants(db)
        db.executescript(_INDEXES)
        db.execute("BEGIN IMMEDIATE")
        try:
            for f in findings:
                tenant = f.get("tenant_id", "default")
                old = db.execute("SELECT * FROM findings WHERE tenant_id=? AND kind=? AND key=?",
                                 (tenant, f["kind"], f["key"])).fetchone()
                spans, runs = list(f["evidence"]["span_ids"]), list(f["evidence"]["run_ids"])
                if old is None:
                    new += 1
                    db.execute(
                        "INSERT INTO findings (id, tenant_id, kind, key, title, count, first_seen, last_seen, score,"
                        " span_ids_json, run_ids_json, details_json, mined_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (finding_id(f["kind"], f["key"], tenant), tenant, f["kind"], f["key"], f["title"], f["count"],
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
        "id": row["id"], "tenant_id": row["tenant_id"] if "tenant_id" in row.keys() else "default",  # noqa: SIM118
        "kind": row["kind"], "key": row["key"], "title": row["title"], "count": row["count"],
        "first_seen": row["first_seen"], "last_seen": row["last_seen"], "score": row["score"],
        "evidence": {"span_ids": json.loads(row["span_ids_json"]), "run_ids": json.loads(row["run_ids_json"])},
        "details": json.loads(row["details_json"]), "mined_at": row["mined_at"], "times_mined": row["times_mined"],
    }


def read_findings(project_root: Path, kind: str | None = None, tenant: str | None = None) -> list[dict[str, Any]]:
    """The stored findings (of one ``kind``: failure, intervention, capability_gap, routing; of one
    ``tenant``), highest score first; an empty list when nothing was mined yet. Read-only: safe while a
    mining run writes.

    Each is ``{id, tenant_id, kind, key, title, count, first_seen, last_seen, score, evidence: {span_ids,
    run_ids}, details, mined_at, times_mined}`` (times are ISO 8601, UTC)."""
    path = database_path(project_root)
    if not path.exists():
        return []
    with _connect(path, readonly=True) as db:
        try:
            tenants = _has_tenants(db)
            if tenant is not None and not tenants and tenant != "default":
                return []  # before tenants, every finding was default's
            wanted = {"kind": kind, "tenant_id": tenant if tenants else None}
            where = {column: value for column, value in wanted.items() if value is not None}
            sql = "SELECT * FROM findings" + (" WHERE " + " AND ".join(f"{c}=?" for c in where) if where else "")
            rows = db.execute(sql + " ORDER BY score DESC, count DESC, id", list(where.values())).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []
            raise
    return [_as_dict(r) for r in rows]


def finding_tenants(project_root: Path) -> set[str]:
    """The tenants that have stored findings."""
    return {f["tenant_id"] for f in read_findings(project_root)}
