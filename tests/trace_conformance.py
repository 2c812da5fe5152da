"""The conformance suite every trace sink/reader pair must pass (``SegmentWriter`` + ``SegmentReader``
on a real trace directory, and the in-memory twin).

Not collected by itself: a ``test_*.py`` module imports these tests and provides a ``backend``
fixture, a ``Backend`` whose ``sink()`` opens a new sink on one trace store, ``reader()`` a reader
of it and ``stored()`` everything the store keeps, as bytes. Each test checks what a user of the
traces (the engine, ``aigentflow trace``, the benchmarks) relies on.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aigentflow.models.client import CallRecord
from aigentflow.models.spec import ModelSpec
from aigentflow.redact import REDACTED, Redactor
from aigentflow.run.protocol import AgentCall
from aigentflow.tracing.protocol import TraceReader, TraceSink
from aigentflow.tracing.spans import (
    Span,
    agent_spans,
    make_span,
    new_span_id,
    root_span_id,
    run_span,
    state_span,
    transition_span,
)


@dataclass
class Backend:
    name: str
    sink: Callable[..., TraceSink]
    """``sink(redactor=None, flush_every=256)``: a new sink on the store."""
    reader: Callable[[], TraceReader]
    """A reader of the store."""
    stored: Callable[[], bytes]
    """Everything the store keeps (files or rows), to search for what must never be kept."""


def a_run(run_id: str, start_ns: int = 1_000_000_000) -> list[Span]:
    """The spans of a small run, as the engine and an agent build them: root, transition, state,
    agent and two model calls."""
    call = AgentCall(run_id=run_id, step="plan", attempt=1, request="Add due dates", project_context="",
                     layers={}, model=ModelSpec(name="replay/demo"), parent_span_id=new_span_id(),
                     agent_name="project_manager", agent_version="1.2.0")
    records = [CallRecord("project_manager", "plan", attempt, f"hash-{tokens}", {}, input_tokens=tokens,
                          output_tokens=40, cost_usd=0.5, duration_s=0.25, recorded_cost_usd=0.5)
               for attempt, tokens in ((1, 1000), (2, 500))]
    model_calls = agent_spans(call, role="project_manager", span_id=new_span_id(), start_ns=start_ns + 20,
                              end_ns=start_ns + 600_000_000, prompt_hash="hash-1000", calls=records)
    return [
        transition_span(run_id, from_state="CREATED", to_state="PLANNING"),
        state_span(run_id, span_id=call.parent_span_id or "", from_state="PLANNING", to_state="COMPLETED",
                   start_ns=start_ns + 10, end_ns=start_ns + 700_000_000, reason="planned"),
        *model_calls,
        run_span(run_id, start_ns=start_ns, end_ns=start_ns + 800_000_000, state="COMPLETED", model="replay/demo",
                 request_chars=13),
    ]


def ordered(spans: list[Span]) -> list[dict[str, Any]]:
    return sorted((dict(s) for s in spans), key=lambda s: (s["start_ns"], s["end_ns"], s["span_id"]))


def write(backend: Backend, spans: list[Span], redactor: Redactor | None = None) -> TraceSink:
    with backend.sink(redactor) as sink:
        sink.extend(spans)
    return sink


# -- spans written are read back -----------------------------------------------------------------


def test_spans_written_are_read_back_whole(backend: Backend) -> None:
    spans = a_run("260101-120000-abcd")
    sink = write(backend, spans)
    assert (sink.spans_written, sink.dropped_spans) == (len(spans), 0)
    read = backend.reader().spans("260101-120000-abcd")
    assert read == ordered(spans)
    (root,) = [s for s in read if s["kind"] == "run"]
    assert root["span_id"] == root_span_id("260101-120000-abcd") and root["parent_id"] is None
    chats = [s for s in read if s["kind"] == "model"]
    assert [c["attributes"]["gen_ai.usage.input_tokens"] for c in chats] == [1000, 500]
    assert all(c["attributes"]["gen_ai.agent.name"] == "project_manager" for c in chats)


def test_attributes_come_back_as_json_gives_them(backend: Backend) -> None:
    one = make_span("hook notify", "hook", run_id="r", start_ns=5,
                    attributes={"paths": ("a.py", "b.py"), "nested": {"n": 1}, "ok": True, "ratio": 0.5,
                                "text": "ünïcode ✓", "none": None})  # type: ignore[dict-item]
    write(backend, [one])
    (read,) = backend.reader().spans("r")
    assert read["attributes"] == {"paths": ["a.py", "b.py"], "nested": {"n": 1}, "ok": True, "ratio": 0.5,
                                  "text": "ünïcode ✓", "none": None}


def test_a_span_changed_after_it_was_added_is_stored_as_added(backend: Backend) -> None:
    one = make_span("state PLANNING", "state", run_id="r", start_ns=1, attributes={"k": "before"})
    with backend.sink() as sink:
        sink.add(one)
        one["name"], one["attributes"]["k"] = "changed", "after"
    reader = backend.reader()
    (read,) = reader.spans("r")
    assert (read["name"], read["attributes"]) == ("state PLANNING", {"k": "before"})
    read["attributes"]["k"] = "changed by the caller"
    assert reader.spans("r")[0]["attributes"] == {"k": "before"}


# -- redaction -----------------------------------------------------------------------------------


def test_redaction_is_applied_before_anything_is_stored(backend: Backend) -> None:
    redactor = Redactor.from_environment({"OPENAI_API_KEY": "canary-env-key-5d41402a",
                                          "DEPLOY_PASSWORD": "canary-pw-7c4a8d09"})
    marker = "visible-marker-3f2a9c"  # proves the search can see plain text at all
    planted = make_span("invoke_agent coder canary-env-key-5d41402a", "agent", run_id="run-1", attributes={
        "prompt": f"{marker} use canary-env-key-5d41402a", "password": "canary-pw-7c4a8d09",
        "note": "key sk-AbCdEfGhIjKlMnOpQrStUvWx0123"})
    planted["status"], planted["error"] = "error", "login failed with canary-pw-7c4a8d09"
    secrets = ["canary-env-key-5d41402a", "canary-pw-7c4a8d09", "sk-AbCdEfGhIjKlMnOpQrStUvWx01"]
    with backend.sink(redactor) as sink:
        sink.add(planted)
        planted["attributes"]["later"] = "canary-pw-7c4a8d09"  # after add: never stored at all
    kept = backend.stored()
    assert marker.encode() in kept
    assert not any(secret.encode() in kept for secret in secrets)
    read_back = json.dumps(backend.reader().spans("run-1"))
    assert marker in read_back and REDACTED in read_back
    assert not any(secret in read_back for secret in secrets)


# -- flush visibility ----------------------------------------------------------------------------


def test_spans_are_visible_at_flush_not_before(backend: Backend) -> None:
    reader = backend.reader()
    sink = backend.sink(None, 100)
    sink.extend(make_span(f"s{i}", "hook", run_id="r", start_ns=i) for i in range(3))
    assert reader.spans("r") == [] and sink.spans_written == 0
    sink.flush()
    assert [s["name"] for s in reader.spans("r")] == ["s0", "s1", "s2"] and sink.spans_written == 3
    sink.flush()  # nothing queued: harmless, nothing doubled
    sink.add(make_span("s3", "hook", run_id="r", start_ns=3))
    assert len(reader.spans("r")) == 3
    sink.close()
    assert [s["name"] for s in reader.spans("r")] == ["s0", "s1", "s2", "s3"] and sink.spans_written == 4


def test_a_full_queue_flushes_itself(backend: Backend) -> None:
    reader = backend.reader()
    sink = backend.sink(None, 2)
    sink.add(make_span("first", "hook", run_id="r", start_ns=1))
    assert reader.spans("r") == []
    sink.add(make_span("second", "hook", run_id="r", start_ns=2))
    assert [s["name"] for s in reader.spans("r")] == ["first", "second"]
    sink.close()


# -- runs, ordering, duplicates ------------------------------------------------------------------


def test_several_runs_are_kept_apart(backend: Backend) -> None:
    runs = ["260101-120000-aaaa", "260101-120000-aaaa0", "260101-120001-bbbb"]  # one id a prefix of another
    sinks = [backend.sink(None, 3) for _ in runs]
    written = {run_id: a_run(run_id, start_ns=10**9 * (i + 1)) for i, run_id in enumerate(runs)}
    for spans in zip(*written.values(), strict=True):  # interleaved, as concurrent runs write
        for sink, one in zip(sinks, spans, strict=True):
            sink.add(one)
    for sink in sinks:
        sink.close()
    reader = backend.reader()
    for run_id, spans in written.items():
        assert reader.spans(run_id) == ordered(spans)
        assert {s["trace_id"] for s in reader.spans(run_id)} == {spans[0]["trace_id"]}
    everything = reader.spans()
    assert everything == ordered([s for spans in written.values() for s in spans])
    assert len({s["trace_id"] for s in everything}) == 3


def test_spans_come_back_ordered_by_start_end_and_id(backend: Backend) -> None:
    spans = [make_span("late", "hook", run_id="r", start_ns=30, end_ns=31),
             make_span("long", "hook", run_id="r", start_ns=10, end_ns=50),
             make_span("short", "hook", run_id="r", start_ns=10, end_ns=20),
             make_span("tie-b", "hook", run_id="r", start_ns=5, end_ns=6, span_id="bbbbbbbbbbbbbbbb"),
             make_span("tie-a", "hook", run_id="r", start_ns=5, end_ns=6, span_id="aaaaaaaaaaaaaaaa"),
             make_span("first", "hook", run_id="r", start_ns=1)]
    with backend.sink(None, 2) as sink:  # across several flushes (segments)
        sink.extend(spans)
    assert [s["name"] for s in backend.reader().spans("r")] == ["first", "tie-a", "tie-b", "short", "long", "late"]


def test_a_span_written_twice_is_read_once(backend: Backend) -> None:
    one = make_span("state ANALYZING", "state", run_id="r", start_ns=7, end_ns=9)
    write(backend, [one])
    write(backend, [one])  # a retried write from another sink
    assert backend.reader().spans("r") == [dict(one)]


# -- bad and unknown run ids, bad spans ----------------------------------------------------------


def test_unknown_and_odd_run_ids(backend: Backend) -> None:
    reader = backend.reader()
    assert reader.spans() == [] and reader.spans("never-written") == []
    quoted = "run-'; DROP TABLE spans; --"
    write(backend, [make_span("a", "hook", run_id="run-1", start_ns=1),
                    make_span("b", "hook", run_id=quoted, start_ns=2)])
    for odd in ("", "run-", "run-%", "run-_", "%", "*", "' OR '1'='1", "RUN-1", "run-1 "):
        assert reader.spans(odd) == [], odd
    assert [s["name"] for s in reader.spans("run-1")] == ["a"]
    assert [s["name"] for s in reader.spans(quoted)] == ["b"]


def test_spans_that_cannot_be_stored_are_counted_not_raised(backend: Backend) -> None:
    good = make_span("good", "hook", run_id="r", start_ns=3)
    unserialisable: dict[str, Any] = {"x": object()}
    bad = [
        {**make_span("bad time", "hook", run_id="r"), "start_ns": "yesterday"},
        {**make_span("float time", "hook", run_id="r"), "end_ns": 1.5},
        {**make_span("huge time", "hook", run_id="r"), "end_ns": 2**64},
        make_span("bad attribute", "hook", run_id="r", attributes=unserialisable),
        {**make_span("list attributes", "hook", run_id="r"), "attributes": ["a"]},
        {**make_span("no run", "hook", run_id="r"), "run_id": None},
        {**make_span("number name", "hook", run_id="r"), "name": 7},
        make_span("bad \udc80 text", "hook", run_id="r"),
        {"name": "no ids"},
    ]
    with backend.sink(None, 2) as sink:
        sink.extend([*bad[:4], good, *bad[4:]])
    assert (sink.spans_written, sink.dropped_spans) == (1, len(bad))
    assert [s["name"] for s in backend.reader().spans()] == ["good"]


def test_sinks_writing_at_once_lose_nothing(backend: Backend) -> None:
    count, writers = 150, 4

    def body(index: int) -> None:
        with backend.sink(None, 16) as sink:
            for i in range(count):
                sink.add(make_span(f"w{index}-{i}", "hook", run_id=f"run-{index}", start_ns=i * writers + index))

    threads = [threading.Thread(target=body, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    reader = backend.reader()
    everything = reader.spans()
    assert len(everything) == count * writers == len({s["span_id"] for s in everything})
    assert [s["start_ns"] for s in everything] == list(range(count * writers))
    assert all(len(reader.spans(f"run-{i}")) == count for i in range(writers))
