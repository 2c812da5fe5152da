"""The compliance tables of migration 6 in ``.aigentflow/state.db``: evidence items and attestations."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any

from aigentflow.exceptions import NotInitialized, UsageError
from aigentflow.project.paths import ProjectPaths
from aigentflow.store.rows import now_iso
from aigentflow.store.sqlite import BUSY_TIMEOUT_MS, SQLiteRunStore


@contextmanager
def connect(paths: ProjectPaths) -> Iterator[sqlite3.Connection]:
    """The state database, migrated (read and written in autocommit; writers use BEGIN IMMEDIATE)."""
    if not paths.initialized:
        raise NotInitialized(f"{paths.root} has no aigentflow state yet: run `aigentflow init` first")
    SQLiteRunStore(paths.database).close()  # applies migrations
    conn = sqlite3.connect(paths.database, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.row_factory = sqlite3.Row
    try:
        yield conn
    finally:
        conn.close()


@dataclass(frozen=True)
class Evidence:
    id: int
    kind: str
    source: str
    sha256: str
    recorded_at: str | None
    collected_at: str
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Attestation:
    id: int
    control: str
    attested_by: str
    attested_at: str
    expires_at: str | None
    note: str

    def expired(self, today: date | None = None) -> bool:
        today = today or datetime.now(UTC).date()
        return self.expires_at is not None and date.fromisoformat(self.expires_at) < today

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "expired": self.expired()}


def evidence_items(conn: sqlite3.Connection, kind: str | None = None) -> list[Evidence]:
    sql, params = "SELECT * FROM compliance_evidence", ()
    if kind:
        sql, params = sql + " WHERE kind = ?", (kind,)
    return [Evidence(r["id"], r["kind"], r["source"], r["sha256"], r["recorded_at"], r["collected_at"], r["summary"])
            for r in conn.execute(sql + " ORDER BY id", params)]


def parse_date(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise UsageError(f"{text!r} is not a date: write it as YYYY-MM-DD (e.g. 2027-06-30)") from None


def attest(conn: sqlite3.Connection, control: str, by: str, expires: str | None, note: str) -> Attestation:
    if not by.strip():
        raise UsageError("say who attests: --by NAME")
    at = now_iso()
    conn.execute("BEGIN IMMEDIATE")
    try:
        cursor = conn.execute(
            "INSERT INTO compliance_attestations (control, attested_by, attested_at, expires_at, note) "
            "VALUES (?,?,?,?,?)", (control, by.strip(), at, expires, note))
        conn.execute("INSERT INTO audit (run_id, event, at, data_json) VALUES (NULL, 'compliance.attested', ?, ?)",
                     (at, _json({"control": control, "by": by.strip(), "expires": expires})))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return Attestation(int(cursor.lastrowid or 0), control, by.strip(), at, expires, note)


def attestations(conn: sqlite3.Connection) -> list[Attestation]:
    return [Attestation(r["id"], r["control"], r["attested_by"], r["attested_at"], r["expires_at"], r["note"])
            for r in conn.execute("SELECT * FROM compliance_attestations ORDER BY id")]


def latest_attestations(conn: sqlite3.Connection) -> dict[str, Attestation]:
    """Each control's most recent attestation."""
    return {a.control: a for a in attestations(conn)}


def _json(data: Any) -> str:
    import json

    return json.dumps(data, sort_keys=True)
