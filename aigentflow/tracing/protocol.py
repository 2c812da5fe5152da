"""``TraceSink`` and ``TraceReader``: what the engine writes spans to, and what reads them back.

``SegmentWriter`` (``writer.py``) and ``SegmentReader`` (``reader.py``), Parquet segments and a
DuckDB file in a trace directory, are the reference; ``memory.py`` is their in-memory twin; both
pass ``tests/trace_conformance.py``. A span is a ``spans.Span`` dict.

The contract, in short:

- **Redaction first.** A sink passes every text field and every attribute of a span through its
  redactor when the span is added, before anything is queued or stored; what is stored, and so what
  any reader sees, never holds a secret the redactor knows.
- **Added as it was.** A sink keeps a copy: changing a span after ``add`` changes nothing stored.
  Attributes come back as JSON gives them back (a tuple as a list).
- **Never raises on a bad span.** A span that cannot be stored (a missing or mistyped field,
  attributes that are not JSON, text that is not UTF-8) is counted in ``dropped_spans``; the others
  are kept.
- **Visible at flush.** Added spans reach readers at ``flush`` (called by the sink itself once
  ``flush_every`` spans are queued, and by ``close``), not before.
- **Read back whole, once, in order.** ``spans(run_id)`` gives exactly that run's spans (no prefix
  or pattern matching; an unknown id gives none), each ``span_id`` once, ordered by
  (``start_ns``, ``end_ns``, ``span_id``); ``spans()`` gives every run's. What is returned is a copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable


@runtime_checkable
class TraceSink(Protocol):
    """Where a run's finished spans go (the engine's ``writer``)."""

    spans_written: int
    """Spans stored so far (made visible by a flush)."""
    dropped_spans: int
    """Spans refused as unstorable so far (never raised)."""

    def add(self, span: Mapping[str, Any]) -> None:
        """Redact and queue one span; flush when ``flush_every`` spans are queued."""

    def extend(self, spans: Iterable[Mapping[str, Any]]) -> None:
        """Queue many spans, as ``add`` each."""

    def flush(self) -> object:
        """Store what is queued, so that readers see it; harmless with nothing queued."""

    def close(self) -> None:
        """Flush, then release what the sink holds."""

    def __enter__(self) -> Self:
        """``with sink:`` yields the sink itself."""

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Close the sink (exceptions propagate)."""


@runtime_checkable
class TraceReader(Protocol):
    """What ``aigentflow trace`` and the benchmarks read: the stored spans, of one run or all."""

    def spans(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """The spans of ``run_id`` (of every run when None), each once, ordered by
        (``start_ns``, ``end_ns``, ``span_id``); none for an unknown run."""
