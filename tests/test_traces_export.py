"""`aigentflow traces export RUN --otlp URL`: a run's spans sent as OTLP/HTTP protobuf.

No OpenTelemetry Collector or Jaeger binary installs from the package registries here, so the receiver is
a real HTTP server in the test that decodes what arrives with opentelemetry-proto, as a collector does,
and answers with an ``ExportTraceServiceResponse``."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from aigentflow.tracing import SegmentWriter, compact
from aigentflow.tracing.spans import trace_id_for
from tests.conftest import aigentflow, commit_files
from tests.test_traces_query import run_spans


class Collector(ThreadingHTTPServer):
    """Accepts POST /v1/traces (protobuf), keeps each decoded request and its headers."""

    def __init__(self, status: int = 200, rejected: int = 0) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[tuple[dict[str, str], ExportTraceServiceRequest]] = []
        self.status, self.rejected = status, rejected

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path != "/v1/traces" or self.headers["Content-Type"] != "application/x-protobuf":
            self.send_error(404, "not an OTLP traces endpoint")
            return
        if self.server.status != 200:
            self.send_error(self.server.status, "collector says no")
            return
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.requests.append((dict(self.headers), request))
        response = ExportTraceServiceResponse()
        if self.server.rejected:
            response.partial_success.rejected_spans = self.server.rejected
        data = response.SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def serve(collector: Collector) -> Iterator[Collector]:
    thread = threading.Thread(target=collector.serve_forever, daemon=True)
    thread.start()
    try:
        yield collector
    finally:
        collector.shutdown()
        collector.server_close()


@pytest.fixture
def collector() -> Iterator[Collector]:
    yield from serve(Collector())


@pytest.fixture
def project(tmp_path: Path, user_config: Path) -> Path:
    from aigentflow.cli.project_cmd import initialise

    root = commit_files(tmp_path / "project", {"README.md": "# p\n"})
    initialise(root)
    traces = root / ".aigentflow" / "traces"
    with SegmentWriter(traces, None) as writer:
        writer.extend(run_spans("run-a"))
    compact(traces)
    with SegmentWriter(traces, None) as writer:
        writer.extend(run_spans("run-b"))
    return root


def test_a_runs_spans_arrive_as_otlp_with_ids_times_status_and_attributes(project: Path,
                                                                          collector: Collector) -> None:
    result = aigentflow("traces", "export", "run-a", "--otlp", collector.url, "--header", "Authorization=Bearer t",
                        cwd=project, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"sent 6 spans of run run-a to {collector.url}/v1/traces in 1 request" in result.stdout
    [(headers, request)] = collector.requests
    assert headers["Authorization"] == "Bearer t"
    [resource_spans] = request.resource_spans
    resource = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}
    assert resource["service.name"] == "aigentflow" and resource["service.version"]
    [scope_spans] = resource_spans.scope_spans
    assert scope_spans.scope.name == "aigentflow"
    sent = {s.name: s for s in scope_spans.spans}
    assert len(scope_spans.spans) == 6  # only run-a's
    expected = {s["name"]: s for s in run_spans("run-a")}
    assert set(sent) == set(expected)
    for span in scope_spans.spans:
        assert span.trace_id == bytes.fromhex(trace_id_for("run-a")) and len(span.span_id) == 8
    by_id = {s.span_id: s for s in scope_spans.spans}
    root, agent, chat = sent["invoke_workflow aigentflow"], sent["invoke_agent planner"], sent["chat gpt-4o-mini"]
    assert root.parent_span_id == b"" and by_id[agent.parent_span_id].name == "state PLANNING"
    assert by_id[chat.parent_span_id] is agent
    assert chat.kind == Span.SPAN_KIND_CLIENT and agent.kind == Span.SPAN_KIND_INTERNAL
    assert (root.start_time_unix_nano, root.end_time_unix_nano) == (1_000, 9_000_000)
    attributes = {kv.key: kv.value for kv in chat.attributes}
    assert attributes["gen_ai.usage.input_tokens"].int_value == 100
    assert attributes["aigentflow.cost_usd"].double_value == pytest.approx(0.01)
    assert attributes["gen_ai.request.model"].string_value == "gpt-4o-mini"
    assert attributes["aigentflow.span.kind"].string_value == "model"
    assert attributes["aigentflow.run_id"].string_value == "run-a"
    assert chat.status.code == Status.STATUS_CODE_OK
    failed = sent["exec python3"]
    assert failed.status.code == Status.STATUS_CODE_ERROR and failed.status.message == "exited 1"


def test_json_output_and_the_collectors_partial_rejection(project: Path) -> None:
    for collector in serve(Collector(rejected=2)):
        result = aigentflow("traces", "export", "run-b", "--otlp", collector.url + "/v1/traces", "--json",
                            cwd=project, timeout=60)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report == {"run_id": "run-b", "url": f"{collector.url}/v1/traces", "spans": 6, "requests": 1,
                          "rejected": 2, "skipped": 0}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_collector_is_a_clear_error_exit_1_and_nothing_changes(project: Path) -> None:
    before = sorted(p.name for p in (project / ".aigentflow" / "traces").rglob("*"))
    result = aigentflow("traces", "export", "run-a", "--otlp", f"http://127.0.0.1:{_closed_port()}", cwd=project,
                        timeout=60)
    assert result.returncode == 1 and result.stdout == ""
    assert "could not reach the OTLP collector" in result.stderr and "refused" in result.stderr.lower()
    assert sorted(p.name for p in (project / ".aigentflow" / "traces").rglob("*")) == before


def test_a_collector_answering_an_error_is_exit_1_with_its_status(project: Path) -> None:
    for collector in serve(Collector(status=503)):
        result = aigentflow("traces", "export", "run-a", "--otlp", collector.url, cwd=project, timeout=60)
        assert result.returncode == 1 and "HTTP 503" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["run-a", "--otlp", "localhost:4318"], "not an http(s) URL"),
    (["run-a", "--otlp", "http://127.0.0.1:9", "--header", "novalue"], "not KEY=VALUE"),
    (["no-such-run", "--otlp", "http://127.0.0.1:9"], "no spans recorded for run 'no-such-run'"),
    (["run-a"], "--otlp"),
])
def test_bad_input_is_refused_with_exit_2(project: Path, args: list[str], message: str) -> None:
    result = aigentflow("traces", "export", *args, cwd=project, timeout=60)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_large_runs_go_in_batches(project: Path, collector: Collector) -> None:
    from aigentflow.tracing import make_span
    from evolution.traces.otlp import send

    spans = [make_span("chat m", "model", run_id="big", start_ns=i + 1, end_ns=i + 2) for i in range(2500)]
    report = send(collector.url, spans)
    assert (report.spans, report.requests) == (2500, 3)
    assert sum(len(r.resource_spans[0].scope_spans[0].spans) for _, r in collector.requests) == 2500
