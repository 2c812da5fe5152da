"""Both trace stores, Parquet segments + DuckDB on a real trace directory (read before and after
compaction) and in memory, against one conformance suite (``trace_conformance.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aigentflow.redact import Redactor
from aigentflow.tracing import (
    InMemoryTraceStore,
    SegmentReader,
    SegmentWriter,
    TraceReader,
    TraceSink,
    compact,
)
from tests.trace_conformance import *  # noqa: F403 (the suite's tests, collected here)
from tests.trace_conformance import Backend


class CompactingReader(SegmentReader):
    """Reads after merging the segments into ``traces.duckdb``: the database path, not the segments."""

    def spans(self, run_id: str | None = None) -> list[dict[str, Any]]:
        compact(self.trace_dir)
        return super().spans(run_id)


def files_under(directory: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file())


@pytest.fixture(params=["segments", "compacted", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    traces = tmp_path / "traces"
    if request.param in ("segments", "compacted"):
        reader = SegmentReader if request.param == "segments" else CompactingReader

        def sink(redactor: Redactor | None = None, flush_every: int = 256) -> TraceSink:
            return SegmentWriter(traces, redactor, flush_every)

        return Backend(request.param, sink, lambda: reader(traces), lambda: files_under(traces))
    store = InMemoryTraceStore()
    return Backend("memory", store.sink, lambda: store,
                   lambda: json.dumps(store.stored(), ensure_ascii=False).encode())


def test_both_stores_implement_the_protocols(tmp_path: Path) -> None:
    with SegmentWriter(tmp_path, None) as writer:
        assert isinstance(writer, TraceSink)
    assert isinstance(SegmentReader(tmp_path), TraceReader)
    store = InMemoryTraceStore()
    assert isinstance(store, TraceReader)
    with store.sink() as sink:
        assert isinstance(sink, TraceSink)
