"""Tracing: spans written as Parquet segments, read back while runs and compactors are at work."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from aigentflow.cli.trace_cmd import trace
from aigentflow.exceptions import StoreError
from aigentflow.redact import REDACTED, Redactor
from aigentflow.tracing import (
    SegmentWriter,
    Span,
    agent_span_name,
    compact,
    list_segments,
    make_span,
    model_span_name,
    read_spans,
    span,
    span_tree,
    summarize,
    trace_id_for,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SUBPROCESS_ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def run_spans(run_id: str = "run-1") -> list[Span]:
    """A small run: run -> state -> agent -> two model calls, plus a failed command."""
    collected: list[Span] = []
    traced = functools.partial(span, run_id=run_id, sink=collected.append)
    transition = {"aigentflow.state.from": "ANALYZING", "aigentflow.state.to": "PLANNING"}
    usage = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.output_tokens": 100,
        "aigentflow.cost_usd": 0.25,
    }
    with traced(f"run {run_id}", "run") as root:
        root_id = root["span_id"]
        with (
            traced("state PLANNING", "state", parent_id=root_id, attributes=transition) as state,
            traced(agent_span_name("planner"), "agent", parent_id=state["span_id"]) as agent,
        ):
            for tokens_in in (1000, 500):
                model = model_span_name("gpt-4o-mini")
                with traced(model, "model", parent_id=agent["span_id"]) as call:
                    call["attributes"].update(usage)
                    call["attributes"]["gen_ai.usage.input_tokens"] = tokens_in
        with pytest.raises(RuntimeError), traced("command pytest", "command", parent_id=root_id):
            raise RuntimeError("3 tests failed")
    return collected


def write(trace_dir: Path, spans: list[Span], redactor: Redactor | None = None) -> SegmentWriter:
    with SegmentWriter(trace_dir, redactor) as writer:
        writer.extend(spans)
    return writer


def test_span_ids_names_and_trace_ids() -> None:
    spans = run_spans()
    assert all(len(s["span_id"]) == 16 and int(s["span_id"], 16) >= 0 for s in spans)
    assert len({s["span_id"] for s in spans}) == len(spans)
    assert {s["trace_id"] for s in spans} == {trace_id_for("run-1")}
    assert len(trace_id_for("run-1")) == 32 and trace_id_for("run-1") != trace_id_for("run-2")
    assert agent_span_name("planner") == "invoke_agent planner"
    assert model_span_name("gpt-4o") == "chat gpt-4o"
    assert all(s["end_ns"] >= s["start_ns"] and s["tenant_id"] == "default" for s in spans)


def test_span_on_exception_records_the_error_and_reraises() -> None:
    sink: list[Span] = []
    with (
        pytest.raises(ValueError, match="bad plan"),
        span("invoke_agent architect", "agent", run_id="r", sink=sink.append),
    ):
        raise ValueError("bad plan")
    assert len(sink) == 1
    assert sink[0]["status"] == "error"
    assert sink[0]["error"] == "ValueError: bad plan"
    with span("ok", "hook", run_id="r", sink=sink.append):
        pass
    assert sink[1]["status"] == "ok" and sink[1]["error"] is None


def test_round_trip_keeps_every_field_and_builds_the_tree(tmp_path: Path) -> None:
    spans = run_spans()
    writer = write(tmp_path, spans + run_spans("other-run"), Redactor.from_environment(env={}))
    assert writer.spans_written == 12 and writer.dropped_spans == 0

    read = read_spans(tmp_path, "run-1")
    assert read == sorted(spans, key=lambda s: s["start_ns"])
    assert len(read_spans(tmp_path)) == 12

    (root,) = span_tree(read)
    assert root["span"]["name"] == "run run-1"
    assert [c["span"]["name"] for c in root["children"]] == ["state PLANNING", "command pytest"]
    (agent,) = root["children"][0]["children"]
    assert agent["span"]["name"] == "invoke_agent planner"
    assert [c["span"]["attributes"]["gen_ai.usage.input_tokens"] for c in agent["children"]] == [
        1000,
        500,
    ]

    summary = summarize(read)
    assert summary["spans"] == 6 and summary["errors"] == 1
    assert (summary["input_tokens"], summary["output_tokens"]) == (1500, 200)
    assert summary["cost_usd"] == pytest.approx(0.5)
    run_span = root["span"]
    run_ms = (run_span["end_ns"] - run_span["start_ns"]) / 1e6
    assert summary["duration_ms"] == pytest.approx(run_ms)


def test_usage_repeated_on_a_parent_is_counted_once() -> None:
    parent = make_span("invoke_agent coder", "agent", run_id="r",
                       attributes={"gen_ai.usage.input_tokens": 30})
    child = make_span("chat m", "model", run_id="r", parent_id=parent["span_id"],
                      attributes={"gen_ai.usage.input_tokens": 30})
    lone = make_span("chat m", "model", run_id="r", attributes={"gen_ai.usage.input_tokens": 5})
    assert summarize([parent, child, lone])["input_tokens"] == 35


def test_orphans_are_roots_of_the_tree() -> None:
    root = make_span("run", "run", run_id="r", start_ns=1)
    orphan = make_span("late", "agent", run_id="r", parent_id="ffffffffffffffff", start_ns=2)
    child = make_span("child", "model", run_id="r", parent_id=root["span_id"], start_ns=3)
    tree = span_tree([child, orphan, root])
    assert [node["span"]["name"] for node in tree] == ["run", "late"]
    assert [node["span"]["name"] for node in tree[0]["children"]] == ["child"]


def test_empty_or_missing_trace_dir_gives_no_spans(tmp_path: Path) -> None:
    assert read_spans(tmp_path / "never-created") == []
    assert read_spans(tmp_path, "run-1") == []
    assert span_tree([]) == []
    assert summarize([])["spans"] == 0
    assert compact(tmp_path) == 0


def test_planted_secrets_never_reach_disk_or_readers(tmp_path: Path) -> None:
    env = {"OPENAI_API_KEY": "canary-env-key-5d41402a", "DEPLOY_PASSWORD": "canary-pw-7c4a8d09"}
    redactor = Redactor.from_environment(env)
    marker = "visible-marker-3f2a9c"  # proves the byte search can see plain text at all
    attributes = {
        "prompt": f"{marker} use canary-env-key-5d41402a",
        "password": "canary-pw-7c4a8d09",
        "note": "key sk-AbCdEfGhIjKlMnOpQrStUvWx0123",
    }
    planted = make_span(
        "invoke_agent coder canary-env-key-5d41402a", "agent", run_id="run-1", attributes=attributes
    )
    planted["status"], planted["error"] = "error", "login failed with canary-pw-7c4a8d09"
    write(tmp_path, [planted], redactor)
    secrets = [b"canary-env-key-5d41402a", b"canary-pw-7c4a8d09", b"sk-AbCdEfGhIjKlMnOpQrStUvWx01"]

    def assert_clean(files: list[Path]) -> None:
        data = b"".join(path.read_bytes() for path in files)
        assert marker.encode() in data
        assert not any(secret in data for secret in secrets)
        read_back = json.dumps(read_spans(tmp_path))
        assert marker in read_back and REDACTED in read_back
        assert not any(secret.decode() in read_back for secret in secrets)

    assert_clean(list_segments(tmp_path))
    assert compact(tmp_path) == 1
    assert_clean([tmp_path / "traces.duckdb"])


def test_unserialisable_spans_are_counted_not_raised(tmp_path: Path) -> None:
    good = make_span("good", "hook", run_id="r")
    bad_time = {**make_span("bad time", "hook", run_id="r"), "start_ns": "yesterday"}
    unserialisable: dict = {"x": object()}
    bad_attribute = make_span("bad attribute", "hook", run_id="r", attributes=unserialisable)
    surrogate = make_span("bad \udc80 text", "hook", run_id="r")
    missing = {"name": "no ids"}
    with SegmentWriter(tmp_path, None, flush_every=2) as writer:
        writer.extend([bad_time, good, bad_attribute, surrogate, missing])
    assert (writer.spans_written, writer.dropped_spans) == (1, 4)
    assert [s["name"] for s in read_spans(tmp_path)] == ["good"]


def test_segments_are_sortable_unique_and_never_touch_the_database(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, None, flush_every=2)
    writer.extend(make_span(f"s{i}", "hook", run_id="r", start_ns=i) for i in range(7))
    assert writer.flush() is not None and writer.flush() is None
    names = [path.name for path in list_segments(tmp_path)]
    assert len(names) == 4 and names == sorted(names) and len(set(names)) == 4
    assert sorted(p.name for p in (tmp_path / "segments").iterdir()) == names  # no temp files left
    assert not (tmp_path / "traces.duckdb").exists()
    assert [s["name"] for s in read_spans(tmp_path)] == [f"s{i}" for i in range(7)]


def test_compaction_merges_segments_and_reading_counts_each_span_once(tmp_path: Path) -> None:
    write(tmp_path, run_spans("run-1"))
    kept_copy = tmp_path / "kept.parquet"
    shutil.copy(list_segments(tmp_path)[0], kept_copy)
    assert compact(tmp_path) == 6
    assert list_segments(tmp_path) == []

    write(tmp_path, run_spans("run-2"))
    # As if a compactor crashed after committing but before deleting its segments.
    shutil.move(kept_copy, tmp_path / "segments" / "00000000000000000000-0-replayed.parquet")
    spans = read_spans(tmp_path)
    assert len(spans) == 12 and len({s["span_id"] for s in spans}) == 12
    assert compact(tmp_path) == 6
    assert len(read_spans(tmp_path)) == 12 and list_segments(tmp_path) == []


HOLD_DATABASE = textwrap.dedent(
    """
    import sys, time, duckdb
    connection = duckdb.connect(sys.argv[1])
    print("holding", flush=True)
    time.sleep(60)
    """
)


def test_reading_while_another_process_holds_the_database_open(tmp_path: Path) -> None:
    write(tmp_path, run_spans("compacted-run"))
    compact(tmp_path)
    write(tmp_path, run_spans("live-run"))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_DATABASE, str(tmp_path / "traces.duckdb")],
        stdout=subprocess.PIPE, text=True, env=SUBPROCESS_ENV,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        assert len(read_spans(tmp_path, "live-run")) == 6
        with pytest.raises(StoreError, match=r"traces.duckdb"):
            compact(tmp_path, wait_s=0.2)
        assert len(read_spans(tmp_path, "live-run")) == 6  # a failed compaction lost nothing
    finally:
        holder.kill()
        holder.wait()
    assert len(read_spans(tmp_path)) == 12


WRITE_SPANS = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from aigentflow.redact import Redactor
    from aigentflow.tracing import SegmentWriter, make_span
    trace_dir, run_id = Path(sys.argv[1]), sys.argv[2]
    with SegmentWriter(trace_dir, Redactor.from_environment(), flush_every=50) as writer:
        for index in range(1000):
            writer.add(make_span(f"step {index}", "state", run_id=run_id))
    print(writer.spans_written)
    """
)


def test_two_writer_processes_lose_nothing(tmp_path: Path) -> None:
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITE_SPANS, str(tmp_path), run_id],
                         stdout=subprocess.PIPE, text=True, env=SUBPROCESS_ENV)
        for run_id in ("writer-a", "writer-b")
    ]
    outputs = [writer.communicate(timeout=60)[0].strip() for writer in writers]
    assert outputs == ["1000", "1000"]
    spans = read_spans(tmp_path)
    assert len(spans) == 2000 and len({s["span_id"] for s in spans}) == 2000
    assert len(read_spans(tmp_path, "writer-a")) == 1000
    assert len(list_segments(tmp_path)) == 40


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".aigentflow").mkdir()
    (tmp_path / ".aigentflow" / "state.db").touch()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def trace_app() -> typer.Typer:
    app = typer.Typer()
    app.callback()(lambda: None)
    app.command()(trace)
    return app


def test_trace_command_prints_the_tree(project: Path) -> None:
    write(project / ".aigentflow" / "traces", run_spans("run-1"))
    result = CliRunner().invoke(trace_app(), ["trace", "run-1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    expected = ("run run-1", "invoke_agent planner", "chat gpt-4o-mini", "tokens 1000 in / 100 out",
                "$0.2500", "error: RuntimeError: 3 tests failed", "6 spans")
    for text in expected:
        assert text in result.output


def test_trace_command_json(project: Path) -> None:
    write(project / ".aigentflow" / "traces", run_spans("run-1"))
    result = CliRunner().invoke(trace_app(), ["trace", "run-1", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["summary"]["input_tokens"] == 1500
    assert len(document["spans"]) == 6


def test_trace_command_unknown_run_is_a_usage_error(project: Path) -> None:
    result = CliRunner().invoke(trace_app(), ["trace", "no-such-run"])
    assert result.exit_code == 2
    assert "no-such-run" in result.output and "aigentflow runs" in result.output


def test_a_corrupt_database_is_reported_with_what_to_do(tmp_path: Path) -> None:
    write(tmp_path, run_spans())
    (tmp_path / "traces.duckdb").write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="Move it aside"):
        read_spans(tmp_path)


def test_readers_see_every_span_once_while_writing_and_compacting_go_on(tmp_path: Path) -> None:
    writer_process = subprocess.Popen(
        [sys.executable, "-c", WRITE_SPANS, str(tmp_path), "busy-run"],
        stdout=subprocess.PIPE, text=True, env=SUBPROCESS_ENV,
    )
    stop = threading.Event()

    def compact_repeatedly() -> None:
        while not stop.is_set():
            compact(tmp_path)
            time.sleep(0.005)

    compactor = threading.Thread(target=compact_repeatedly)
    compactor.start()
    counts = []
    try:
        while writer_process.poll() is None:
            spans = read_spans(tmp_path)
            assert len({s["span_id"] for s in spans}) == len(spans)
            counts.append(len(spans))
    finally:
        stop.set()
        compactor.join()
        writer_process.communicate(timeout=60)
    assert counts == sorted(counts)  # a reader never loses a span it saw before
    assert len(read_spans(tmp_path, "busy-run")) == 1000


def test_an_agent_span_names_the_skills_it_carried_and_those_its_version_may_not_use(tmp_path: Path) -> None:
    from aigentflow.models.client import CallRecord
    from aigentflow.models.spec import ModelSpec
    from aigentflow.project.facts import language_of
    from aigentflow.run.protocol import AgentCall
    from aigentflow.tracing import agent_spans, new_span_id
    from aigentflow.tracing.reader import read_spans

    call = AgentCall(run_id="run-skills", step="build/T1", attempt=1, request="Add infra", project_context="",
                     layers={}, model=ModelSpec(name="replay/demo"), parent_span_id=new_span_id(),
                     skill_picks=({"name": "python-testing"}, {"name": "git-hygiene"}),
                     skills_withheld=("terraform",))
    record = CallRecord("backend_developer", "build/T1", 1, "hash-1", {}, input_tokens=10, output_tokens=5,
                        cost_usd=0.0, duration_s=0.01)
    spans = agent_spans(call, role="backend_developer", span_id=new_span_id(), start_ns=1_000, end_ns=2_000,
                        prompt_hash="hash-1", calls=[record])
    with SegmentWriter(tmp_path, Redactor.from_environment()) as writer:
        writer.extend(spans)
    (agent,) = [s for s in read_spans(tmp_path, "run-skills") if s["kind"] == "agent"]
    assert agent["attributes"]["aigentflow.skills"] == "python-testing,git-hygiene"
    assert agent["attributes"]["aigentflow.skills.withheld"] == "terraform"
    bare = agent_spans(AgentCall(run_id="r", step="plan", attempt=1, request="x", project_context="", layers={},
                                 model=ModelSpec(name="replay/demo")),
                       role="analyst", span_id=new_span_id(), start_ns=1, end_ns=2, prompt_hash="h", calls=[])
    assert "aigentflow.skills" not in bare[0]["attributes"]
    assert "aigentflow.skills.withheld" not in bare[0]["attributes"]
    assert language_of(["web/app.tsx", "web/list.tsx", "README.md", "setup.py"]) == "TypeScript"
    assert language_of(["README.md", "notes.txt"]) is None


_SECRET_TEXTS = ("canary-env-key-5d41402a", "sk-AbCdEfGhIjKlMnOpQrStUvWx0123", "password=hunter2hunter2",
                 "Bearer abcdefghijklmnopqrstuvwxyz012345", "https://user:pa55word@example.com/x", "plain words")


def _row_values(row: dict) -> tuple:
    values = dict(row)
    values["attributes"] = json.loads(values["attributes"])
    return tuple(values.values())


def test_the_fast_row_encoder_gives_what_the_general_one_gives() -> None:
    """Every span the writer stores goes through ``RowEncoder``'s fast path; whatever the span holds,
    it must store what the general ``span_row`` stores (redacted alike) or refuse it alike."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from aigentflow.tracing.rows import COLUMNS, UNSTORABLE, RowEncoder, span_row
    from aigentflow.tracing.spans import new_span_id

    redactor = Redactor.from_environment({"OPENAI_API_KEY": "canary-env-key-5d41402a"})
    text = st.one_of(st.sampled_from(_SECRET_TEXTS), st.text(max_size=12))
    keys = st.one_of(st.sampled_from(("api_key", "password", "input_tokens", "gen_ai.agent.name", "note",
                                      "canary-env-key-5d41402a")), st.text(max_size=6))
    values = st.one_of(text, st.integers(min_value=-(2**70), max_value=2**70), st.floats(), st.booleans(),
                       st.none(), st.lists(text, max_size=2), st.dictionaries(keys, text, max_size=2))
    ids = st.one_of(st.just(new_span_id()), st.just("0" * 32), text)
    spans = st.fixed_dictionaries({
        "span_id": ids, "trace_id": ids, "parent_id": st.one_of(st.none(), ids), "run_id": text,
        "tenant_id": st.just("default"), "name": text, "kind": st.sampled_from(("model", "agent", "tool")),
        "start_ns": st.one_of(st.integers(min_value=0, max_value=2**64), st.just(1.5)),
        "end_ns": st.integers(min_value=0, max_value=2**62), "status": st.sampled_from(("ok", "error")),
        "error": st.one_of(st.none(), text),
        "attributes": st.dictionaries(st.one_of(keys, st.integers(0, 3)), values, max_size=5),
    })

    @settings(max_examples=400, deadline=None)
    @given(spans)
    def check(span: dict) -> None:
        for who in (redactor, None):
            encoder = RowEncoder(who)
            try:
                expected = _row_values(span_row(span, who))
            except UNSTORABLE:
                with pytest.raises(UNSTORABLE):
                    encoder.values(span)
                continue
            for _ in range(2):  # the second time from what the encoder learnt (names, ids, heads)
                assert _row_values(dict(zip(COLUMNS, encoder.values(span), strict=True))) == expected

    check()
