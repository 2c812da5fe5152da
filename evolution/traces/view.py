"""The ``spans`` view: every span of a project as one wide DuckDB relation, readable while runs write.

An in-memory DuckDB connection reads the Parquet segments (``read_parquet``) and the compacted
``traces.duckdb`` (attached read-only, skipped while a compactor holds it), each span once. Columns
carry OpenTelemetry GenAI names with dots made underscores (``gen_ai.usage.input_tokens`` ->
``gen_ai_usage_input_tokens``); every attribute is also in ``attributes`` (JSON).

A connection opened ``confined`` (what ``aigentflow traces query`` uses) can read files only in the
trace directory and cannot change its configuration.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aigentflow.exceptions import StoreError
from aigentflow.tracing import spans as names
from aigentflow.tracing.writer import (
    COLUMN_TYPES,
    DATABASE_FILENAME,
    compaction_lock,
    list_segments,
    sql_literal,
)

VIEW = "spans"
COMPACTOR_WAIT_S = 5.0
_ATTEMPTS = 5

ATTRIBUTE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("gen_ai_operation_name", "VARCHAR", names.OPERATION_NAME),
    ("gen_ai_agent_name", "VARCHAR", names.AGENT_NAME),
    ("gen_ai_agent_version", "VARCHAR", names.AGENT_VERSION),
    ("gen_ai_request_model", "VARCHAR", names.REQUEST_MODEL),
    ("gen_ai_tool_name", "VARCHAR", names.TOOL_NAME),
    ("gen_ai_usage_input_tokens", "BIGINT", names.INPUT_TOKENS),
    ("gen_ai_usage_output_tokens", "BIGINT", names.OUTPUT_TOKENS),
    ("cost_usd", "DOUBLE", names.COST_USD),
    ("prompt_hash", "VARCHAR", names.PROMPT_HASH),
    ("step", "VARCHAR", "aigentflow.step"),
    ("attempt", "BIGINT", "aigentflow.attempt"),
    ("state_from", "VARCHAR", names.STATE_FROM),
    ("state_to", "VARCHAR", names.STATE_TO),
    ("reason", "VARCHAR", names.REASON),
    ("process_executable_name", "VARCHAR", names.PROCESS_EXECUTABLE),
    ("process_exit_code", "BIGINT", names.PROCESS_EXIT_CODE),
    ("command_kind", "VARCHAR", names.COMMAND_KIND),
    ("git_operation", "VARCHAR", names.GIT_OPERATION),
    ("decision", "VARCHAR", names.DECISION),
)
"""(column, type, attribute): the attributes the view lifts into columns of their own."""

BASE_COLUMNS = ("trace_id", "span_id", "parent_id", "run_id", "tenant_id", "name", "kind", "start_ns", "end_ns",
                "start_time", "duration_ms", "status", "error")
COLUMNS = (*BASE_COLUMNS, *(column for column, _, _ in ATTRIBUTE_COLUMNS), "attributes")
"""The view's columns, in order."""

_STORED = ", ".join(COLUMN_TYPES)


def _view_sql(sources: list[str], run_id: str | None) -> str:
    paths = ", ".join(f"'$.\"{attribute}\"'" for _, _, attribute in ATTRIBUTE_COLUMNS)
    lifted = ",\n".join(
        f"    TRY_CAST(lifted[{index}] AS {kind}) AS {column}" if kind != "VARCHAR" else
        f"    lifted[{index}] AS {column}"
        for index, (column, kind, _) in enumerate(ATTRIBUTE_COLUMNS, start=1)
    )
    if sources:
        stored = " UNION ALL ".join(sources)
        where = f"WHERE run_id = '{run_id.replace(chr(39), chr(39) * 2)}'" if run_id is not None else ""
        raw = f"""SELECT * FROM ({stored}) {where}
            QUALIFY row_number() OVER (PARTITION BY span_id ORDER BY start_ns) = 1"""
    else:  # nothing recorded yet: the same columns, no rows
        raw = "SELECT " + ", ".join(f"NULL::{t} AS {n}" for n, t in COLUMN_TYPES.items()) + " WHERE false"
    return f"""CREATE OR REPLACE TEMP VIEW {VIEW} AS
SELECT trace_id, span_id, parent_id, run_id, tenant_id, name, kind, start_ns, end_ns,
    make_timestamp(start_ns // 1000) AS start_time,
    greatest(end_ns - start_ns, 0) / 1e6 AS duration_ms, status, error,
{lifted},
    attributes::JSON AS attributes
FROM (SELECT *, json_extract_string(attributes, [{paths}]) AS lifted FROM ({raw}))"""


def _attach_compacted(connection: Any, database: Path) -> bool:
    """Attach ``traces.duckdb`` read-only; False when absent, without spans, or held by a writer right now."""
    import duckdb

    if not database.exists():
        return False
    try:
        connection.execute(f"ATTACH '{sql_literal(database)}' AS compacted (READ_ONLY)")
    except duckdb.Error as exc:
        if isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower():
            return False
        raise StoreError(f"{database} could not be read as a trace database ({exc}). Move it aside and "
                         "query again; spans not yet compacted are still in the segments directory.") from None
    return bool(connection.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'compacted' AND table_name = 'spans'"
    ).fetchone()[0])


def _prepare(connection: Any, trace_dir: Path, run_id: str | None, confined: bool) -> None:
    sources = []
    # Attach before listing segments: a segment deleted after this was merged into what is attached.
    if _attach_compacted(connection, trace_dir / DATABASE_FILENAME):
        sources.append(f"SELECT {_STORED} FROM compacted.spans")
    segments = list_segments(trace_dir)
    if segments:
        files = ", ".join(f"'{sql_literal(path)}'" for path in segments)
        sources.append(f"SELECT {_STORED} FROM read_parquet([{files}], union_by_name := true)")
    connection.execute(_view_sql(sources, run_id))
    if confined:
        connection.execute(f"SET allowed_directories = ['{sql_literal(trace_dir.resolve())}/']")
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")


@contextmanager
def open_spans(trace_dir: Path, *, run_id: str | None = None, confined: bool = True) -> Iterator[Any]:
    """An in-memory DuckDB connection with the ``spans`` view over ``trace_dir`` (one run's spans with
    ``run_id``); ``confined``: no file outside ``trace_dir`` can be read and no setting changed.

    Holds ``compact.lock`` shared while open, so that no compactor deletes a segment mid-query; a
    compactor slow to finish is not waited for (its segments are still there, its database skipped).
    """
    import duckdb

    trace_dir = Path(trace_dir)
    with compaction_lock(trace_dir, shared=True, wait_s=COMPACTOR_WAIT_S):
        connection = duckdb.connect()
        try:
            _prepare(connection, trace_dir, run_id, confined)
            yield connection
        finally:
            connection.close()


def query(trace_dir: Path, sql: str, *, run_id: str | None = None,
          parameters: list[Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one statement over the ``spans`` view (``confined``); its column names and rows.

    The caller checks that ``sql`` is read-only (``evolution.traces.query.check_read_only``). A segment
    that disappears between listing and reading (a compactor that did not wait) is listed again.
    """
    import duckdb

    for attempt in range(_ATTEMPTS):
        try:
            with open_spans(trace_dir, run_id=run_id) as connection:
                cursor = connection.execute(sql, parameters or [])
                columns = [d[0] for d in cursor.description or []]
                return columns, cursor.fetchall()
        except duckdb.IOException:
            if attempt == _ATTEMPTS - 1:
                raise
            time.sleep(0.02 * (attempt + 1))
    raise AssertionError("unreachable")
