"""What the miner's SQL reads, in one in-memory DuckDB connection:

- ``spans``: the span facts (``facts.py``) started at or after ``since``;
- ``repeated_model_calls``: the same, of the model calls whose (run, prompt hash) was sent more than once;
- ``runs``, ``transitions``, ``steps``: the run store's rows from then on, times as epoch nanoseconds.

DuckDB's sqlite extension cannot be downloaded here, so the store is read with Python's sqlite3
(read-only) and handed to DuckDB as one JSON array per table; every question is then asked in SQL.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from evolution.patterns.facts import facts_source

_STORE_TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "runs": ("SELECT id, state, created_at AS at FROM runs",
             {"id": "VARCHAR", "state": "VARCHAR", "at": "VARCHAR"}),
    "transitions": ("SELECT seq, run_id, from_state, to_state, event, reason, at FROM transitions",
                    {"seq": "BIGINT", "run_id": "VARCHAR", "from_state": "VARCHAR", "to_state": "VARCHAR",
                     "event": "VARCHAR", "reason": "VARCHAR", "at": "VARCHAR"}),
    # Outputs only of the plan (the work breakdown: each task's type); the rest are large and unused.
    "steps": ("SELECT run_id, step, attempt, role, state, status, error, started_at AS at, cost_usd,"
              " CASE WHEN step = 'plan' AND status = 'completed' THEN output_json END AS output FROM steps",
              {"run_id": "VARCHAR", "step": "VARCHAR", "attempt": "INTEGER", "role": "VARCHAR", "state": "VARCHAR",
               "status": "VARCHAR", "error": "VARCHAR", "at": "VARCHAR", "cost_usd": "DOUBLE", "output": "VARCHAR"}),
}

_EMPTY_SPANS = """
    SELECT NULL::VARCHAR span_id, NULL::VARCHAR parent_id, NULL::VARCHAR run_id, NULL::VARCHAR kind,
           NULL::VARCHAR name, NULL::BIGINT start_ns, NULL::BIGINT end_ns, NULL::VARCHAR status,
           NULL::VARCHAR error, NULL::VARCHAR role, NULL::VARCHAR step, NULL::VARCHAR prompt_hash,
           NULL::DOUBLE cost_usd, NULL::VARCHAR tool, NULL::BOOLEAN refused, NULL::VARCHAR task_id,
           NULL::VARCHAR task_status, NULL::INTEGER fix_attempts, NULL::VARCHAR verdict, NULL::VARCHAR state_to,
           NULL::VARCHAR language, NULL::VARCHAR skills_withheld,
           NULL::UBIGINT loop_key, NULL::UBIGINT task_key, NULL::UBIGINT sid, NULL::UBIGINT pid,
           NULL::VARCHAR step_kind, NULL::VARCHAR segment
    WHERE false
"""


def _store_rows(database: Path, sql: str) -> list[dict[str, Any]]:
    if not database.exists():
        return []
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as db:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=5000")
        return [dict(row) for row in db.execute(sql)]


def load(connection: Any, project_root: Path, since_ns: int | None) -> None:
    """Create the ``spans`` view and the store tables in ``connection``."""
    since = 0 if since_ns is None else int(since_ns)
    source = facts_source(project_root)
    spans = f"SELECT * FROM {source} WHERE start_ns >= {since}" if source else _EMPTY_SPANS
    connection.execute(f"CREATE OR REPLACE VIEW spans AS {spans}")
    repeated = facts_source(project_root, "repeats")
    repeats = f"SELECT * FROM {repeated} WHERE start_ns >= {since}" if repeated else _EMPTY_SPANS
    connection.execute(f"CREATE OR REPLACE VIEW repeated_model_calls AS {repeats}")
    database = Path(project_root) / ".aigentflow" / "state.db"
    for table, (sql, columns) in _STORE_TABLES.items():
        rows = _store_rows(database, sql)
        struct = "[{" + ", ".join(f'"{n}": "{t}"' for n, t in columns.items()) + "}]"
        fields = ", ".join(f"r.{n} AS {n}" for n in columns if n != "at")
        # Store times are ISO 8601 in UTC ("2026-01-02T03:04:05.678+00:00").
        connection.execute(
            f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM (SELECT {fields}, "
            f"epoch_ns(CAST(substr(r.at, 1, 23) AS TIMESTAMP)) AS at_ns "
            f"FROM (SELECT unnest(from_json(?, '{struct}')) AS r)) WHERE at_ns >= {since}",
            [json.dumps(rows)],
        )
