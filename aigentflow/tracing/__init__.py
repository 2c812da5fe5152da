"""Tracing: spans of every run step, written as Parquet segments and read back with DuckDB.

``spans`` builds span records, ``writer`` writes them (and compacts segments into
``traces.duckdb``), ``reader`` reads, nests and summarises them. DuckDB is imported only by the
functions that touch files, so importing this package stays cheap.
"""

from __future__ import annotations

from aigentflow.tracing.reader import (
    SpanNode,
    duration_ms,
    read_spans,
    span_tree,
    summarize,
)
from aigentflow.tracing.spans import (
    Span,
    SpanSink,
    agent_span_name,
    make_span,
    model_span_name,
    new_span_id,
    span,
    trace_id_for,
)
from aigentflow.tracing.writer import SegmentWriter, compact, list_segments

__all__ = [
    "SegmentWriter",
    "Span",
    "SpanNode",
    "SpanSink",
    "agent_span_name",
    "compact",
    "duration_ms",
    "list_segments",
    "make_span",
    "model_span_name",
    "new_span_id",
    "read_spans",
    "span",
    "span_tree",
    "summarize",
    "trace_id_for",
]
