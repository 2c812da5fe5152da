"""What the miner's SQL reads, in one in-memory DuckDB connection, one tenant at a time:

- ``spans``: the tenant's span facts (``facts.py``) started at or after ``since``;
- ``repeated_model_calls``: the same, of the model calls whose (run, prompt hash) was sent more than once;
- ``runs``, ``transitions``, ``steps``: the tenant's rows of the run store from then on, times as epoch
  nanoseconds.

``load`` reads everything once (``all_spans``, ``all_repeated_model_calls``, ``all_runs``, ...: every
tenant's); ``scope(connection, tenant)`` then points the five names above at one tenant's rows, so that no
query can count, join or take a median across tenants: each query class only ever sees one tenant.

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
    "runs": ("SELECT id, tenant_id, state, created_at AS at FROM runs",
             {"id": "VARCHAR", "tenant_id": "VARCHAR", "state": "VARCHAR", "at": "VARCHAR"}),
    "transitions": ("SELECT seq, run_id, tenant_id, from_state, to_state, event, reason, at FROM transitions",
                    {"seq": "BIGINT", "run_id": "VARCHAR", "tenant_id": "VARCHAR", "from_state": "VARCHAR",
                     "to_state": "VARCHAR", "event": "VARCHAR", "reason": "VARCHAR", "at": "VARCHAR"}),
    # Outputs only of the plan (the work breakdown: each task's type); the rest are large and unused.
    "steps": ("SELECT run_id, tenant_id, step, attempt, role, state, status, error, started_at AS at, cost_usd,"
              " CASE WHEN step = 'plan' AND status = 'completed' THEN output_json END AS output FROM steps",
              {"run_id": "VARCHAR", "tenant_id": "VARCHAR", "step": "VARCHAR", "attempt": "INTEGER",
               "role": "VARCHAR", "state": "VARCHAR", "status": "VARCHAR", "error": "VARCHAR", "at": "VARCHAR",
               "cost_usd": "DOUBLE", "output": "VARCHAR"}),
}

_EMPTY_SPANS = """
    SELECT NULL::VARCHAR span_id, NULL::VARCHAR parent_id, NULL::VARCHAR run_id, NULL::VARCHAR tenant_id,
           NULL::VARCHAR kind,
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
    """Create the every-tenant ``all_*`` views and tables in ``connection`` (see the module docstring)."""
    since = 0 if since_ns is None else int(since_ns)
    source = facts_source(project_root)
    spans = f"SELECT * FROM {source} WHERE start_ns >= {since}" if source else _EMPTY_SPANS
    connection.execute(f"CREATE OR REPLACE VIEW all_spans AS {spans}")
    repeated = facts_source(project_root, "repeats")
    repeats = f"SELECT * FROM {repeated} WHERE start_ns >= {since}" if repeated else _EMPTY_SPANS
    connection.execute(f"CREATE OR REPLACE VIEW all_repeated_model_calls AS {repeats}")
    database = Path(project_root) / ".aigentflow" / "state.db"
    for table, (sql, columns) in _STORE_TABLES.items():
        rows = _store_rows(database, sql)
        struct = "[{" + ", ".join(f'"{n}": "{t}"' for n, t in columns.items()) + "}]"
        fields = ", ".join(f"r.{n} AS {n}" for n in columns if n != "at")
        # Store times are ISO 8601 in UTC ("2026-01-02T03:04:05.678+00:00").
        connection.execute(
            f"CREATE OR REPLACE TABLE all_{table} AS SELECT * FROM (SELECT {fields}, "
            f"epoch_ns(CAST(substr(r.at, 1, 23) AS TIMESTAMP)) AS at_ns "
            f"FROM (SELECT unnest(from_json(?, '{struct}')) AS r)) WHERE at_ns >= {since}",
            [json.dumps(rows)],
        )


SCOPED = ("spans", "repeated_model_calls", *_STORE_TABLES)
"""The names the queries read; ``scope`` makes each one tenant's."""


def tenants(connection: Any) -> list[str]:
    """Every tenant with spans or store rows in what ``load`` loaded (from ``since`` on), sorted."""
    rows = connection.execute("""
        SELECT DISTINCT tenant_id FROM (SELECT tenant_id FROM all_spans UNION ALL SELECT tenant_id FROM all_runs
                                        UNION ALL SELECT tenant_id FROM all_transitions
                                        UNION ALL SELECT tenant_id FROM all_steps)
        WHERE tenant_id IS NOT NULL ORDER BY tenant_id""").fetchall()
    return [row[0] for row in rows]


def scope(connection: Any, tenant: str, *, alone: bool = False) -> None:
    """Point ``spans``, ``repeated_model_calls``, ``runs``, ``transitions`` and ``steps`` at ``tenant``'s rows;
    ``alone``: every row loaded is that tenant's (``tenants`` found no other), so no filter is needed."""
    from aigentflow.tenants.registry import check_id

    literal = check_id(tenant)  # a slug: safe inside the SQL text
    where = "" if alone else f" WHERE tenant_id = '{literal}'"
    for name in SCOPED:
        connection.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM all_{name}{where}")


def known_tenants(project_root: Path) -> set[str]:
    """The tenants the project's store knows: registered ones and those its runs were recorded under."""
    database = Path(project_root) / ".aigentflow" / "state.db"
    known = {"default"}
    for sql in ("SELECT id AS tenant_id FROM tenants", "SELECT DISTINCT tenant_id FROM runs"):
        try:
            known |= {row["tenant_id"] for row in _store_rows(database, sql)}
        except sqlite3.OperationalError:  # an older store without the registry
            continue
    return known
