"""Tracing: spans of every run step, written as Parquet segments and read back with DuckDB.

``spans`` builds span records, ``writer`` writes them (and compacts segments into
``traces.duckdb``), ``reader`` reads, nests and summarises them; ``protocol`` says what a sink and
a reader must do, ``memory`` is their in-memory twin. DuckDB is imported only by the functions that
touch files, so importing this package stays cheap.
"""

from __future__ import annotations

from aigentflow.tracing.memory import InMemoryTraceSink, InMemoryTraceStore
from aigentflow.tracing.protocol import TraceReader, TraceSink
from aigentflow.tracing.reader import (
    SegmentReader,
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
    agent_spans,
    chat_span,
    command_span,
    decision_span,
    git_span,
    make_span,
    model_span_name,
    new_span_id,
    root_span_id,
    run_span,
    span,
    state_span,
    task_span,
    tool_span,
    trace_id_for,
    transition_span,
)
from aigentflow.tracing.writer import SegmentWriter, compact, list_segments

__all__ = [
    "InMemoryTraceSink",
    "InMemoryTraceStore",
    "SegmentReader",
    "SegmentWriter",
    "Span",
    "SpanNode",
    "SpanSink",
    "TraceReader",
    "TraceSink",
    "agent_span_name",
    "agent_spans",
    "chat_span",
    "command_span",
    "compact",
    "decision_span",
    "duration_ms",
    "git_span",
    "list_segments",
    "make_span",
    "model_span_name",
    "new_span_id",
    "read_spans",
    "root_span_id",
    "run_span",
    "span",
    "span_tree",
    "state_span",
    "summarize",
    "task_span",
    "tool_span",
    "trace_id_for",
    "transition_span",
]
