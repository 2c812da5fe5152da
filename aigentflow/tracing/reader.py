"""Reading spans while runs are still writing them: no lock is ever taken that blocks a writer.

Spans come from the compacted ``traces.duckdb`` (attached read-only, skipped while another
process holds it for writing) and from the Parquet segments not yet compacted, each span once.
A reader holds ``compact.lock`` shared, which only keeps a compactor from starting mid-read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypedDict

from aigentflow.exceptions import StoreError
from aigentflow.tracing.spans import COST_USD, INPUT_TOKENS, OUTPUT_TOKENS, SPAN_FIELDS
from aigentflow.tracing.writer import (
    DATABASE_FILENAME,
    compaction_lock,
    list_segments,
    sql_literal,
)

_READ_ATTEMPTS = 5
COMPACTOR_WAIT_S = 5.0


class SpanNode(TypedDict):
    """A span with the spans it is the parent of, ordered by start time."""

    span: dict[str, Any]
    children: list[SpanNode]


class SegmentReader:
    """The ``TraceReader`` of a trace directory: its ``traces.duckdb`` and the segments not yet in it."""

    def __init__(self, trace_dir: Path) -> None:
        self.trace_dir = Path(trace_dir)

    def spans(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """The spans of ``run_id`` (of every run when None): see ``read_spans``."""
        return read_spans(self.trace_dir, run_id)


def read_spans(trace_dir: Path, run_id: str | None = None) -> list[dict[str, Any]]:
    """The spans of ``trace_dir`` (of one run when ``run_id`` is given), ordered by ``start_ns``."""
    import duckdb

    trace_dir = Path(trace_dir)
    # Holding the lock shared keeps a compactor from starting mid-read; if one is slow to finish,
    # read anyway: the database is then skipped, the segments it is merging are still there.
    with compaction_lock(trace_dir, shared=True, wait_s=COMPACTOR_WAIT_S):
        for attempt in range(_READ_ATTEMPTS):
            connection = duckdb.connect()
            try:
                rows = _query(connection, trace_dir, run_id)
                break
            except duckdb.IOException as exc:
                # A compactor deleted a segment between listing and reading: list again.
                if attempt == _READ_ATTEMPTS - 1:
                    raise StoreError(
                        f"could not read the trace segments in {trace_dir}: {exc}. Move the "
                        "file it names out of the segments directory and read again."
                    ) from None
                time.sleep(0.02 * (attempt + 1))
            finally:
                connection.close()
    spans = [dict(zip(SPAN_FIELDS, row, strict=True)) for row in rows]
    for one in spans:
        one["attributes"] = json.loads(one["attributes"]) if one["attributes"] else {}
    return spans


def span_sources(connection: Any, trace_dir: Path, columns: str) -> tuple[list[str], list[Any]]:
    """The SELECTs (and their parameters) that together give every span of ``trace_dir`` once compacted
    spans and segments are put together with UNION ALL: the compacted database (attached to
    ``connection`` as ``compacted``) and the segments not merged into it. Empty when there are no traces."""
    sources: list[str] = []
    parameters: list[Any] = []
    # Attach before listing segments: segments deleted after this were merged into what we see.
    if _attach_compacted(connection, trace_dir / DATABASE_FILENAME):
        sources.append(f"SELECT {columns} FROM compacted.spans")
    segments = list_segments(trace_dir)
    if segments:
        sources.append(f"SELECT {columns} FROM read_parquet(?, union_by_name := true)")
        parameters.append([str(path) for path in segments])
    return sources, parameters


def _query(connection: Any, trace_dir: Path, run_id: str | None) -> list[tuple[Any, ...]]:
    columns = ", ".join(SPAN_FIELDS)
    sources, parameters = span_sources(connection, trace_dir, columns)
    if not sources:
        return []
    where = ""
    if run_id is not None:
        where = "WHERE run_id = ?"
        parameters.append(run_id)
    return connection.execute(
        f"""
        SELECT {columns} FROM ({" UNION ALL ".join(sources)}) {where}
        QUALIFY row_number() OVER (PARTITION BY span_id ORDER BY start_ns) = 1
        ORDER BY start_ns, end_ns, span_id
        """,
        parameters,
    ).fetchall()


def _attach_compacted(connection: Any, database: Path) -> bool:
    """Attach the compacted database read-only; False when absent or held by a writer right now."""
    import duckdb

    if not database.exists():
        return False
    try:
        connection.execute(f"ATTACH '{sql_literal(database)}' AS compacted (READ_ONLY)")
    except duckdb.Error as exc:
        if isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower():
            return False
        raise StoreError(
            f"{database} could not be read as a trace database ({exc}). Move it aside and "
            "re-run; spans not yet compacted are still in the segments directory."
        ) from None
    tables = connection.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE database_name = 'compacted' AND table_name = 'spans'"
    ).fetchone()[0]
    return bool(tables)


def span_tree(spans: Iterable[Mapping[str, Any]]) -> list[SpanNode]:
    """Spans nested under their parents; spans whose parent is unknown are roots."""
    ordered = sorted(spans, key=lambda s: (s["start_ns"], s["end_ns"]))
    nodes = {s["span_id"]: SpanNode(span=dict(s), children=[]) for s in ordered}
    roots: list[SpanNode] = []
    for node in nodes.values():
        parent = nodes.get(node["span"].get("parent_id") or "")
        if parent is None or parent is node:
            roots.append(node)
        else:
            parent["children"].append(node)
    _break_cycles(nodes, roots)
    return roots


def _break_cycles(nodes: dict[str, SpanNode], roots: list[SpanNode]) -> None:
    """Corrupt parent links that form a cycle would hide spans: make such spans roots."""
    reached: set[str] = set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        reached.add(node["span"]["span_id"])
        stack.extend(node["children"])
    for span_id, node in nodes.items():
        if span_id in reached:
            continue
        parent = nodes[node["span"]["parent_id"]]
        parent["children"] = [child for child in parent["children"] if child is not node]
        roots.append(node)
        stack = [node]
        while stack:
            current = stack.pop()
            reached.add(current["span"]["span_id"])
            stack.extend(current["children"])


def duration_ms(span: Mapping[str, Any]) -> float:
    """How long a span took, in milliseconds."""
    return max(0, span["end_ns"] - span["start_ns"]) / 1e6


def summarize(spans: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Span count, errors, wall-clock duration, tokens in and out, and cost of a set of spans.

    Usage recorded both on a span and on one of its descendants (an agent span repeating the
    totals of its model calls) is counted once, at the descendants.
    """
    spans = list(spans)
    totals: dict[str, Any] = {
        "spans": len(spans),
        "errors": sum(1 for s in spans if s["status"] == "error"),
        "duration_ms": 0.0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
    }
    if not spans:
        return totals
    start = min(s["start_ns"] for s in spans)
    end = max(s["end_ns"] for s in spans)
    totals["duration_ms"] = max(0, end - start) / 1e6
    for total_name, attribute in (
        ("input_tokens", INPUT_TOKENS),
        ("output_tokens", OUTPUT_TOKENS),
        ("cost_usd", COST_USD),
    ):
        totals[total_name] += _sum_innermost(spans, attribute)
    totals["cost_usd"] = round(totals["cost_usd"], 6)
    return totals


def _sum_innermost(spans: list[Mapping[str, Any]], attribute: str) -> int | float:
    parents = {s["span_id"]: s.get("parent_id") for s in spans}
    carriers = [s for s in spans if _number(s["attributes"].get(attribute)) is not None]
    covered: set[str] = set()  # spans with a descendant that carries the attribute
    for carrier in carriers:
        ancestor, seen = parents.get(carrier["span_id"]), set()
        while ancestor and ancestor not in seen:
            seen.add(ancestor)
            covered.add(ancestor)
            ancestor = parents.get(ancestor)
    return sum(
        _number(s["attributes"][attribute]) or 0 for s in carriers if s["span_id"] not in covered
    )


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value
