"""The DSAR log (``dsar`` table of the run store): one row per export or erasure, the subject as its keyed
hash only, with when it was asked for, when it completed and how long it took, against the 30-day target
(GDPR Art. 12(3): one month)."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TARGET_DAYS = 30


@dataclass
class DsarRecord:
    id: str
    tenant_id: str
    subject_hash: str
    kind: str
    status: str
    requested_at: str
    completed_at: str | None
    duration_s: float | None
    summary: dict[str, Any]

    @property
    def within_target(self) -> bool | None:
        if self.duration_s is None:
            return None
        return self.duration_s <= TARGET_DAYS * 86400

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "target_days": TARGET_DAYS, "within_target": self.within_target}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@contextmanager
def connect(database: Path) -> Iterator[sqlite3.Connection]:
    """The run store, migrated (the GDPR tables come with migration 4)."""
    from aigentflow.store.sqlite import SQLiteRunStore

    SQLiteRunStore(database).close()
    connection = sqlite3.connect(database, isolation_level=None, timeout=10)
    connection.row_factory = sqlite3.Row
    try:
        connection.execute("PRAGMA busy_timeout=10000")
        yield connection
    finally:
        connection.close()


def _record(row: sqlite3.Row) -> DsarRecord:
    data = dict(row)
    data["summary"] = json.loads(data.pop("summary_json"))
    return DsarRecord(**data)


def open_request(database: Path, subject_hash: str, kind: str, tenant_id: str = "default") -> DsarRecord:
    """The subject's unfinished request of this kind (an erase interrupted earlier), else a new one."""
    with connect(database) as connection:
        row = connection.execute("SELECT * FROM dsar WHERE subject_hash=? AND kind=? AND status!='done' "
                                 "ORDER BY requested_at DESC LIMIT 1", (subject_hash, kind)).fetchone()
        if row is not None:
            return _record(row)
        request_id = "dsar-" + secrets.token_hex(4)
        connection.execute("INSERT INTO dsar (id, tenant_id, subject_hash, kind, status, requested_at) "
                           "VALUES (?,?,?,?,?,?)", (request_id, tenant_id, subject_hash, kind, "in_progress",
                                                    now_iso()))
        return _record(connection.execute("SELECT * FROM dsar WHERE id=?", (request_id,)).fetchone())


def complete_request(database: Path, request_id: str, summary: dict[str, Any], status: str = "done") -> DsarRecord:
    with connect(database) as connection:
        row = connection.execute("SELECT requested_at FROM dsar WHERE id=?", (request_id,)).fetchone()
        started = datetime.fromisoformat(row["requested_at"])
        finished = datetime.now(UTC)
        connection.execute("UPDATE dsar SET status=?, completed_at=?, duration_s=?, summary_json=? WHERE id=?",
                           (status, finished.isoformat(timespec="milliseconds"),
                            round((finished - started).total_seconds(), 3), json.dumps(summary, sort_keys=True),
                            request_id))
        return _record(connection.execute("SELECT * FROM dsar WHERE id=?", (request_id,)).fetchone())


def list_requests(database: Path) -> list[DsarRecord]:
    with connect(database) as connection:
        return [_record(r) for r in connection.execute("SELECT * FROM dsar ORDER BY requested_at, id")]
