"""The spans detection looks at, since a moment: agent and model calls (for error rates), sandboxed commands
(for escapes), and any span carrying ``[REDACTED]`` (a secret the redactor caught on its way out).

One DuckDB query over the compacted database and the segments (as ``aigentflow.tracing.reader`` reads them:
the compaction lock held shared, never blocking a writer), filtered by start time and kind in the query, so
a project with many runs is not read whole. Nothing is read (nor DuckDB imported) when there are no traces.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aigentflow.redact import REDACTED
from aigentflow.tracing.reader import COMPACTOR_WAIT_S, span_sources
from aigentflow.tracing.writer import DATABASE_FILENAME, compaction_lock, list_segments

CALL_KINDS = ("agent", "model")
COLUMNS = "span_id, run_id, tenant_id, name, kind, start_ns, status, error, attributes"


def signal_spans(trace_dir: Path, since_ns: int) -> list[dict[str, Any]]:
    """Agent, model and command spans started at or after ``since_ns``, and any span with redacted text."""
    trace_dir = Path(trace_dir)
    if not (trace_dir / DATABASE_FILENAME).exists() and not list_segments(trace_dir):
        return []
    import duckdb

    with compaction_lock(trace_dir, shared=True, wait_s=COMPACTOR_WAIT_S):
        connection = duckdb.connect()
        try:
            sources, parameters = span_sources(connection, trace_dir, COLUMNS)
            if not sources:
                return []
            rows = connection.execute(
                f"""SELECT {COLUMNS} FROM ({" UNION ALL ".join(sources)})
                WHERE start_ns >= ? AND (kind IN ('agent', 'model', 'command')
                      OR contains(attributes, ?) OR contains(coalesce(error, ''), ?))
                QUALIFY row_number() OVER (PARTITION BY span_id ORDER BY start_ns) = 1
                ORDER BY start_ns""",
                [*parameters, since_ns, REDACTED, REDACTED],
            ).fetchall()
        except duckdb.IOException:
            return []  # a compactor removed a segment under us: the next detection reads it from the database
        finally:
            connection.close()
    names = [c.strip() for c in COLUMNS.split(",")]
    spans = [dict(zip(names, row, strict=True)) for row in rows]
    for span in spans:
        span["attributes"] = json.loads(span["attributes"]) if span["attributes"] else {}
    return spans
