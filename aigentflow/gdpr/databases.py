"""Searching and rewriting the databases under ``.aigentflow/``, whatever their schema: SQLite files (the
run store, evolution's findings), DuckDB files (compacted traces) and Parquet trace segments.

Every text column of every table is searched, so a table another component adds is covered without a
change here. A SQLite edit runs with ``secure_delete`` on and ends with ``VACUUM`` and a truncating WAL
checkpoint, so the old text survives neither in free pages nor in the WAL. Append-only triggers are
dropped and re-created inside the same transaction: an erasure is the one edit they must allow. A DuckDB
file or a segment is rewritten whole (a new file, then ``os.replace``): DuckDB keeps old blocks otherwise.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UsageError
from aigentflow.gdpr.hits import Hit, Unit
from aigentflow.gdpr.subject import Subject

SQLITE_MAGIC = b"SQLite format 3\x00"
PARQUET_MAGIC = b"PAR1"


def file_kind(path: Path) -> str:
    """sqlite, duckdb, parquet or file, from the file's first bytes."""
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError:
        return "file"
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head[8:12] == b"DUCK":
        return "duckdb"
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    return "file"


def _decoded(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return None


def _record(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


# -- SQLite -------------------------------------------------------------------------------------

def _sqlite(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, timeout=10)
    connection.execute("PRAGMA busy_timeout=10000")
    return connection


def _tables(connection: sqlite3.Connection) -> list[tuple[str, list[str]]]:
    names = [r[0] for r in connection.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
        "AND sql NOT LIKE '%WITHOUT ROWID%' ORDER BY name")]
    return [(name, [c[1] for c in connection.execute(f'PRAGMA table_info("{name}")')]) for name in names]


def search_sqlite(path: Path, relative: str, location: str, subject: Subject) -> Unit:
    unit = Unit("sqlite", relative, location)
    connection = _sqlite(path)
    try:
        connection.create_function("gdpr_match", 1, lambda v: int(bool((t := _decoded(v)) and subject.search(t))),
                                   deterministic=True)
        for table, columns in _tables(connection):
            if not columns:
                continue
            condition = " OR ".join(f'gdpr_match("{c}")' for c in columns)
            for row in connection.execute(f'SELECT rowid, * FROM "{table}" WHERE {condition}'):
                rowid, values = row[0], dict(zip(columns, row[1:], strict=True))
                for column, value in values.items():
                    text = _decoded(value)
                    if text and subject.search(text):
                        unit.hits.append(Hit(location, unit.key, {"table": table, "rowid": rowid, "column": column},
                                             {k: _record(v) if isinstance(v, str) else _decoded(v) or v
                                              for k, v in values.items()}))
    finally:
        connection.close()
    return unit


def erase_sqlite(path: Path, subject: Subject, replacement: str) -> int:
    """Replace the subject in every text value of every table; the number of values changed."""
    connection = _sqlite(path)
    changed = 0
    try:
        def replaced(value: Any) -> Any:
            text = _decoded(value)
            if not text or not subject.search(text):
                return value
            new = subject.replace(text, replacement)
            return new if isinstance(value, str) else new.encode("utf-8", "surrogateescape")

        connection.create_function("gdpr_replace", 1, replaced, deterministic=True)
        connection.create_function("gdpr_match", 1, lambda v: int(bool((t := _decoded(v)) and subject.search(t))),
                                   deterministic=True)
        connection.execute("PRAGMA secure_delete=ON")
        connection.execute("BEGIN IMMEDIATE")
        try:
            for table, columns in _tables(connection):
                triggers = [r[0] for r in connection.execute(
                    "SELECT sql FROM sqlite_master WHERE type='trigger' AND tbl_name=?", (table,))]
                names = [r[0] for r in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name=?", (table,))]
                for column in columns:
                    hits = connection.execute(
                        f'SELECT count(*) FROM "{table}" WHERE gdpr_match("{column}")').fetchone()[0]
                    if not hits:
                        continue
                    for name in names:
                        connection.execute(f'DROP TRIGGER IF EXISTS "{name}"')
                    names = []
                    changed += connection.execute(
                        f'UPDATE "{table}" SET "{column}"=gdpr_replace("{column}") WHERE gdpr_match("{column}")'
                    ).rowcount
                if not names:
                    for sql in triggers:
                        connection.execute(sql)
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        scrub_sqlite(connection, path)
    finally:
        connection.close()
    return changed


def scrub_sqlite(connection: sqlite3.Connection, path: Path) -> None:
    """Rebuild the file (``VACUUM``) and empty its WAL, so no old page is left anywhere."""
    connection.execute("VACUUM")
    busy = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy and busy[0]:
        raise UsageError(f"{path} is in use by another process (its WAL could not be emptied); stop it "
                         "(`aigentflow status` shows live runs) and run the erase again: it continues.")


# -- DuckDB and Parquet ---------------------------------------------------------------------------

def _text_columns(connection: Any, relation: str) -> tuple[list[str], list[str]]:
    described = connection.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    columns = [r[0] for r in described]
    return columns, [r[0] for r in described if str(r[1]).upper() in ("VARCHAR", "JSON")]


def _search_relation(connection: Any, relation: str, subject: Subject, unit: Unit, label: dict[str, Any]) -> None:
    columns, texts = _text_columns(connection, relation)
    if not texts:
        return
    condition = " OR ".join(f'regexp_matches("{c}", ?, \'i\')' for c in texts)
    rows = connection.execute(f"SELECT * FROM {relation} WHERE {condition}", [subject.re2_pattern] * len(texts))
    for row in rows.fetchall():
        values = dict(zip(columns, row, strict=True))
        for column in texts:
            if isinstance(values[column], str) and subject.search(values[column]):
                where = {**label, "column": column}
                if "span_id" in values:
                    where["span_id"] = values["span_id"]
                record = {k: _record(v) if k == "attributes" and isinstance(v, str) else v for k, v in values.items()}
                unit.hits.append(Hit(unit.location, unit.key, where, record))


def _replaced_select(connection: Any, relation: str, subject: Subject, replacement: str) -> str:
    columns, texts = _text_columns(connection, relation)
    literal = replacement.replace("'", "''").replace("\\", "\\\\")
    pattern = subject.re2_pattern.replace("'", "''")
    parts = [f"regexp_replace(\"{c}\", '{pattern}', '{literal}', 'gi') AS \"{c}\"" if c in texts else f'"{c}"'
             for c in columns]
    return f"SELECT {', '.join(parts)} FROM {relation}"


def search_parquet(path: Path, relative: str, location: str, subject: Subject) -> Unit:
    import duckdb

    unit = Unit("parquet", relative, location)
    with duckdb.connect() as connection:
        _search_relation(connection, f"read_parquet('{_literal(path)}')", subject, unit, {"segment": relative})
    return unit


def erase_parquet(path: Path, subject: Subject, replacement: str) -> None:
    import duckdb

    temporary = path.with_name(f".{path.name}.gdpr.tmp")
    with duckdb.connect() as connection:
        select = _replaced_select(connection, f"read_parquet('{_literal(path)}')", subject, replacement)
        connection.execute(f"COPY ({select}) TO '{_literal(temporary)}' (FORMAT PARQUET)")
    os.replace(temporary, path)


def search_duckdb(path: Path, relative: str, location: str, subject: Subject) -> Unit:
    import duckdb

    unit = Unit("duckdb", relative, location)
    with duckdb.connect() as connection:
        connection.execute(f"ATTACH '{_literal(path)}' AS db (READ_ONLY)")
        for (table,) in _duckdb_tables(connection):
            _search_relation(connection, f'db."{table}"', subject, unit, {"table": table})
    return unit


def _duckdb_tables(connection: Any) -> list[tuple[str]]:
    return connection.execute("SELECT table_name FROM duckdb_tables() WHERE database_name='db' "
                              "AND schema_name='main' ORDER BY table_name").fetchall()


def erase_duckdb(path: Path, subject: Subject, replacement: str) -> None:
    """Copy every table, subject replaced, into a new file that then replaces the old one."""
    import duckdb

    temporary = path.with_name(f".{path.name}.gdpr.tmp")
    temporary.unlink(missing_ok=True)
    with duckdb.connect() as connection:
        connection.execute(f"ATTACH '{_literal(path)}' AS db (READ_ONLY)")
        connection.execute(f"ATTACH '{_literal(temporary)}' AS fresh")
        for (table,) in _duckdb_tables(connection):
            select = _replaced_select(connection, f'db."{table}"', subject, replacement)
            connection.execute(f'CREATE TABLE fresh."{table}" AS {select}')
        connection.execute("DETACH fresh")
    os.replace(temporary, path)
    Path(f"{path}.wal").unlink(missing_ok=True)


def _literal(path: Path) -> str:
    return str(path).replace("'", "''")
