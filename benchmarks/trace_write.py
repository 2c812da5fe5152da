"""Trace throughput: N spans written through SegmentWriter (redaction included) and read back.

Prints one JSON line: {"benchmark": "trace_write", "spans": N, "write_spans_per_s": ...,
"read_spans_per_s": ..., "segment_count": ...}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from aigentflow.redact import Redactor
from aigentflow.tracing.reader import read_spans
from aigentflow.tracing.spans import (
    COST_USD,
    INPUT_TOKENS,
    OUTPUT_TOKENS,
    REQUEST_MODEL,
    Span,
    make_span,
    model_span_name,
)
from aigentflow.tracing.writer import SegmentWriter, list_segments


def sample_spans(count: int, run_id: str) -> list[Span]:
    """``count`` model-call spans shaped like a real run's, all children of one run span."""
    root = make_span(f"run {run_id}", "run", run_id=run_id)
    spans = [root]
    start = root["start_ns"]
    for index in range(count - 1):
        spans.append(
            make_span(
                model_span_name("gpt-4o-mini"),
                "model",
                run_id=run_id,
                parent_id=root["span_id"],
                start_ns=start + index * 1_000,
                end_ns=start + index * 1_000 + 900,
                attributes={
                    "gen_ai.operation.name": "chat",
                    REQUEST_MODEL: "gpt-4o-mini",
                    INPUT_TOKENS: 1200 + index % 50,
                    OUTPUT_TOKENS: 300 + index % 20,
                    COST_USD: 0.0004,
                    "aigentflow.prompt_hash": f"{index % 64:064x}",
                },
            )
        )
    return spans[:count]


def run(count: int, flush_every: int) -> dict[str, object]:
    """Write and read ``count`` spans in a temporary directory; return the measurements."""
    spans = sample_spans(count, run_id="bench-run")
    redactor = Redactor.from_environment()
    with tempfile.TemporaryDirectory(prefix="aigentflow-trace-bench-") as directory:
        trace_dir = Path(directory)
        started = time.perf_counter()
        with SegmentWriter(trace_dir, redactor, flush_every=flush_every) as writer:
            writer.extend(spans)
        write_s = time.perf_counter() - started
        started = time.perf_counter()
        read_back = read_spans(trace_dir, "bench-run")
        read_s = time.perf_counter() - started
        if len(read_back) != count:
            raise SystemExit(f"wrote {count} spans but read {len(read_back)} back")
        return {
            "benchmark": "trace_write",
            "spans": count,
            "flush_every": flush_every,
            "write_spans_per_s": round(count / write_s),
            "read_spans_per_s": round(count / read_s),
            "segment_count": len(list_segments(trace_dir)),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_000, help="how many spans to write")
    parser.add_argument("--flush-every", type=int, default=256, help="spans per segment")
    arguments = parser.parse_args()
    print(json.dumps(run(arguments.spans, arguments.flush_every)))


if __name__ == "__main__":
    main()
