"""``.aigentflow/evolution.db``: the SQLite file (WAL) the evolution loop keeps its tables in (findings,
tournaments, matches, ratings, promotions, incidents). Each store passes its own schema; readers open it
read-only, so the web UI and ``list`` commands read while a miner or a tournament writes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

DATABASE = "evolution.db"


def database_path(project_root: Path) -> Path:
    return Path(project_root) / ".aigentflow" / DATABASE


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@contextmanager
def connect(project_root: Path, schema: str, *, readonly: bool = False,
            timeout_s: float = 10.0) -> Iterator[sqlite3.Connection]:
    """A connection to the project's evolution.db (rows as ``sqlite3.Row``, autocommit: callers ``BEGIN``);
    writers create the file and ``schema``'s tables."""
    path = database_path(project_root)
    if readonly:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout_s, isolation_level=None)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
    with closing(connection):
        connection.row_factory = sqlite3.Row
        connection.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
        if not readonly:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.executescript(schema)
        yield connection
