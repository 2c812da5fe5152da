"""Trace ingest: W writer processes x N spans each through ``SegmentWriter`` at once, then read back.

Each writer process builds its spans first (a run's mix: model calls with tokens and cost, agent calls,
sandboxed commands, git operations), waits at a barrier, then writes them with redaction on and the
configured flush size (``trace.flush_every_spans``, 1024) and closes (pyarrow is imported before the
barrier: a writer is a long-lived process, the import a one-time ~0.15 s start cost). Ingest is every span written over
the wall time from the barrier to the last writer closed. Then every span is read back (``read_spans``):
the capture rate is the share of span ids written that come back, each once.

The writers' own CPU time (``time.process_time`` over the same stretch) is reported too: ``cpu_us_per_span``
and ``cpu_bound_spans_per_s`` (the cores this process may use, divided by the CPU time a span): the
ingest rate if the writers had the cores to themselves, which on a machine shared with other work they
do not (compare ``load_avg_1m``).

Prints one JSON line: {"benchmark": "trace_ingest", "writers", "spans", "ingest_spans_per_s",
"capture_rate", "lost", "duplicated", "dropped", "read_spans_per_s", "segments", "cpus",
"cpu_us_per_span", "cpu_bound_spans_per_s", ...}; exits 1 if a span is lost or doubled.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aigentflow.redact import Redactor
from aigentflow.tracing.reader import read_spans
from aigentflow.tracing.spans import (
    AGENT_NAME,
    COST_USD,
    INPUT_TOKENS,
    OPERATION_NAME,
    OUTPUT_TOKENS,
    PROMPT_HASH,
    REQUEST_MODEL,
    Span,
    make_span,
    root_span_id,
)
from aigentflow.tracing.writer import SegmentWriter, list_segments


def run_spans(run_id: str, count: int) -> list[Span]:
    """``count`` spans shaped like a run's: mostly model calls, with agent calls, commands and git operations."""
    root = make_span("invoke_workflow aigentflow", "run", run_id=run_id, span_id=root_span_id(run_id))
    spans, start = [root], root["start_ns"]
    for index in range(count - 1):
        at = start + index * 1_000
        shape = index % 10
        if shape < 6:
            spans.append(make_span("chat gpt-4o-mini", "model", run_id=run_id, parent_id=root["span_id"],
                                   start_ns=at, end_ns=at + 900, attributes={
                                       OPERATION_NAME: "chat", REQUEST_MODEL: "gpt-4o-mini", AGENT_NAME: "developer",
                                       INPUT_TOKENS: 1200 + index % 50, OUTPUT_TOKENS: 300 + index % 20,
                                       COST_USD: 0.0004, PROMPT_HASH: f"{index % 64:064x}", "aigentflow.attempt": 1}))
        elif shape < 8:
            spans.append(make_span("invoke_agent developer", "agent", run_id=run_id, parent_id=root["span_id"],
                                   start_ns=at, end_ns=at + 900, attributes={
                                       OPERATION_NAME: "invoke_agent", AGENT_NAME: "developer",
                                       "gen_ai.agent.version": "1.0.0", "aigentflow.step": f"build/T{index % 8}"}))
        elif shape == 8:
            spans.append(make_span("exec python3", "command", run_id=run_id, parent_id=root["span_id"],
                                   start_ns=at, end_ns=at + 900, status="error" if index % 7 == 0 else "ok",
                                   error="exited 1" if index % 7 == 0 else None, attributes={
                                       "process.executable.name": "python3", "process.exit.code": int(index % 7 == 0),
                                       "aigentflow.command.kind": "test", "aigentflow.sandbox.network": "namespace"}))
        else:
            spans.append(make_span("git merge", "git", run_id=run_id, parent_id=root["span_id"], start_ns=at,
                                   end_ns=at + 900, attributes={"aigentflow.git.operation": "merge",
                                                                "aigentflow.git.target": f"aigentflow/{run_id}/feature",
                                                                "aigentflow.git.conflict": False}))
    return spans[:count]


def _writer(trace_dir: str, run_id: str, count: int, flush_every: int, barrier: Any, results: Any) -> None:
    import pyarrow.parquet  # noqa: F401 - imported once per process (~0.1 s), before timing: a writer lives long

    spans = run_spans(run_id, count)
    redactor = Redactor.from_environment()
    barrier.wait()
    started, cpu_started = time.perf_counter(), time.process_time()
    with SegmentWriter(Path(trace_dir), redactor, flush_every=flush_every) as writer:
        writer.extend(spans)
    cpu_s = time.process_time() - cpu_started
    results.put({"run_id": run_id, "seconds": time.perf_counter() - started, "cpu_s": cpu_s,
                 "written": writer.spans_written,
                 "dropped": writer.dropped_spans, "ids": [s["span_id"] for s in spans]})


def run(writers: int, count: int, flush_every: int) -> dict[str, Any]:
    context = multiprocessing.get_context("fork")  # nothing here has threads or Ray yet
    with tempfile.TemporaryDirectory(prefix="aigentflow-ingest-") as directory:
        barrier, results = context.Barrier(writers + 1), context.Queue()
        processes = [context.Process(target=_writer, args=(directory, f"ingest-{n}", count, flush_every, barrier,
                                                           results)) for n in range(writers)]
        for process in processes:
            process.start()
        barrier.wait()
        started = time.perf_counter()
        reports = [results.get() for _ in processes]
        wall = time.perf_counter() - started
        for process in processes:
            process.join()
        if any(p.exitcode for p in processes):
            raise SystemExit(f"a writer failed: exit codes {[p.exitcode for p in processes]}")
        started = time.perf_counter()
        read_back = read_spans(Path(directory))
        read_s = time.perf_counter() - started
        written_ids = {i for r in reports for i in r["ids"]}
        read_ids = [s["span_id"] for s in read_back]
        lost = len(written_ids - set(read_ids))
        total = writers * count
        cpu_s = sum(r["cpu_s"] for r in reports)
        cpus = len(os.sched_getaffinity(0))
        return {
            "benchmark": "trace_ingest", "writers": writers, "spans_per_writer": count, "spans": total,
            "flush_every": flush_every, "ingest_spans_per_s": round(total / wall), "ingest_s": round(wall, 3),
            "writer_spans_per_s_median": round(statistics.median(count / r["seconds"] for r in reports)),
            "read_back": len(read_ids), "capture_rate": round((len(written_ids) - lost) / len(written_ids), 6),
            "lost": lost, "duplicated": len(read_ids) - len(set(read_ids)),
            "dropped": sum(r["dropped"] for r in reports), "read_spans_per_s": round(len(read_ids) / read_s),
            "segments": len(list_segments(Path(directory))), "cpus": cpus,
            "writer_cpu_s": round(cpu_s, 3), "cpu_us_per_span": round(cpu_s / total * 1e6, 2),
            "cpu_bound_spans_per_s": round(cpus * total / cpu_s),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--spans", type=int, default=10_000, help="spans per writer")
    parser.add_argument("--flush-every", type=int, default=1024, help="spans per segment (trace.flush_every_spans)")
    args = parser.parse_args()
    result = run(args.writers, args.spans, args.flush_every)
    print(json.dumps(result))
    if result["lost"] or result["duplicated"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
