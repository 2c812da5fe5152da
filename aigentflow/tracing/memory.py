"""``InMemoryTraceStore``: the trace directory's twin in memory, for tests. Same redaction, dropped
spans, flush visibility, ordering and dedup as ``SegmentWriter`` + ``SegmentReader``
(``tests/trace_conformance.py`` holds both to it).

Spans are kept as the rows a segment holds (text fields redacted, attributes as JSON text), so what
comes back is what DuckDB would give back: fresh dicts, JSON-normalised, sharing nothing with the
caller. ``sink()`` opens a ``TraceSink`` that stores into it, as a ``SegmentWriter`` on the directory.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from aigentflow.redact import Redactor
from aigentflow.tracing.rows import COLUMNS, is_storable
from aigentflow.tracing.spans import SPAN_FIELDS
from aigentflow.tracing.writer import SpanBuffer


class InMemoryTraceStore:
    """A ``TraceReader`` over spans kept in memory; ``sink()`` writes to it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []

    def sink(self, redactor: Redactor | None = None, flush_every: int = 1024) -> InMemoryTraceSink:
        """A new sink storing here, as ``SegmentWriter(trace_dir, redactor, flush_every)``."""
        return InMemoryTraceSink(self, redactor, flush_every)

    def stored(self) -> list[dict[str, Any]]:
        """The rows as kept (attributes as JSON text): what a test searches for planted secrets."""
        with self._lock:
            return [dict(row) for row in self._rows]

    def spans(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """The spans of ``run_id`` (of every run when None), each once, ordered like the DuckDB reader."""
        with self._lock:
            rows = [row for row in self._rows if run_id is None or row["run_id"] == run_id]
        first: dict[str, dict[str, Any]] = {}
        for row in rows:  # of a span stored twice, the copy that starts first (as the reader's QUALIFY)
            kept = first.get(row["span_id"])
            if kept is None or row["start_ns"] < kept["start_ns"]:
                first[row["span_id"]] = row
        ordered = sorted(first.values(), key=lambda row: (row["start_ns"], row["end_ns"], row["span_id"]))
        return [{**{field: row.get(field) for field in SPAN_FIELDS}, "attributes": json.loads(row["attributes"])}
                for row in ordered]

    def _keep(self, rows: list[dict[str, Any]]) -> None:
        with self._lock:
            self._rows.extend(rows)


class InMemoryTraceSink(SpanBuffer):
    """A ``TraceSink`` into an ``InMemoryTraceStore``: spans are redacted when added, stored at flush."""

    def __init__(self, store: InMemoryTraceStore, redactor: Redactor | None, flush_every: int = 1024) -> None:
        super().__init__(redactor, flush_every)
        self.store = store

    def flush(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
            kept = [dict(zip(COLUMNS, row, strict=True)) for row in rows if is_storable(row)]
            self.dropped_spans += len(rows) - len(kept)
            self.store._keep(kept)
            self.spans_written += len(kept)
