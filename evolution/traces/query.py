"""``aigentflow traces query``: one read-only DuckDB statement over the ``spans`` view.

A statement is refused before anything runs unless DuckDB's own parser says it is exactly one SELECT
(``WITH``, ``FROM``-first, ``VALUES``, ``DESCRIBE``, ``SHOW`` and ``SUMMARIZE`` are SELECTs to it); the
connection it runs on is in memory, with the segments and ``traces.duckdb`` attached read-only and no file
outside the trace directory readable (``view.open_spans``), so nothing a query says can change a project.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UsageError
from evolution.traces import view


class QueryRefused(UsageError):
    """Not one read-only statement, or SQL that DuckDB does not accept: nothing ran."""


@dataclass
class QueryResult:
    """The column names and rows of a query."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        """Each row as {column: value}."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def check_read_only(sql: str) -> None:
    """Raise ``QueryRefused`` unless ``sql`` is exactly one SELECT statement."""
    import duckdb

    try:
        statements = duckdb.connect().extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryRefused(f"the query is not valid SQL: {exc}") from None
    if not statements:
        raise QueryRefused('no SQL statement given; pass one, e.g. "SELECT kind, count(*) FROM spans GROUP BY kind"')
    if len(statements) > 1:
        raise QueryRefused(f"{len(statements)} statements given; `traces query` runs exactly one read-only "
                           "statement: remove the `;` and what follows it")
    kind = str(statements[0].type).rpartition(".")[2]
    if kind != "SELECT":
        raise QueryRefused(f"{kind} statements are refused: `traces query` only reads (SELECT, WITH ... SELECT, "
                           "FROM ..., DESCRIBE spans); nothing was run or changed")


def run_query(trace_dir: Path, sql: str, *, run_id: str | None = None) -> QueryResult:
    """Check ``sql`` and run it over the ``spans`` view of ``trace_dir`` (one run's spans with ``run_id``)."""
    import duckdb

    check_read_only(sql)
    try:
        columns, rows = view.query(trace_dir, sql, run_id=run_id)
    except duckdb.Error as exc:
        raise QueryRefused(f"DuckDB refused the query: {exc}") from None
    return QueryResult(columns, rows)
