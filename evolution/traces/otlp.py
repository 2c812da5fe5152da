"""``aigentflow traces export RUN --otlp URL``: a run's spans as OTLP/HTTP protobuf.

Spans become one ``ExportTraceServiceRequest`` per batch (resource ``service.name=aigentflow``, scope
``aigentflow``), POSTed to ``URL/v1/traces`` with ``Content-Type: application/x-protobuf``, as Jaeger,
Langfuse, Phoenix and the OpenTelemetry Collector accept it. Ids are the hex ids decoded to bytes (16 for
a trace, 8 for a span), times stay nanoseconds since the epoch, ``ok``/``error`` become STATUS_CODE_OK /
STATUS_CODE_ERROR with the error as the status message, model calls are CLIENT spans and the rest
INTERNAL. Attributes keep their names; the span's ``kind``, run and tenant ride along as
``aigentflow.span.kind``, ``aigentflow.run_id`` and ``aigentflow.tenant_id``. Reading and sending never
change the project.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aigentflow import __version__
from aigentflow.exceptions import AigentflowError, UsageError

TRACES_PATH = "/v1/traces"
CONTENT_TYPE = "application/x-protobuf"
BATCH_SPANS = 1000
TIMEOUT_S = 10.0
CLIENT_KINDS = frozenset({"model"})
"""Span kinds that are calls out of the process (OpenTelemetry SpanKind CLIENT); the rest are INTERNAL."""


class ExportFailed(AigentflowError):
    """The collector could not be reached or refused what was sent (exit 1)."""


@dataclass
class ExportReport:
    """What an export sent: spans, requests, spans the collector said it rejected, spans skipped as malformed."""

    url: str
    spans: int = 0
    requests: int = 0
    rejected: int = 0
    skipped: int = 0


def endpoint(url: str) -> str:
    """The traces endpoint of ``url`` (``URL/v1/traces``, unless it already ends so); refuses what is not http(s)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--otlp {url!r} is not an http(s) URL; pass the collector's OTLP/HTTP address, "
                         "e.g. http://localhost:4318")
    return url if parts.path.rstrip("/").endswith(TRACES_PATH) else url.rstrip("/") + TRACES_PATH


def any_value(value: Any) -> Any:
    """A span attribute as an OTLP ``AnyValue`` (bool before int: a bool is an int to Python)."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue

    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value) if -(2**63) <= value < 2**63 else AnyValue(string_value=str(value))
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    if value is None:
        return AnyValue()
    return AnyValue(string_value=value if isinstance(value, str) else str(value))


def _key_values(attributes: Mapping[str, Any]) -> list[Any]:
    from opentelemetry.proto.common.v1.common_pb2 import KeyValue

    return [KeyValue(key=str(key), value=any_value(value)) for key, value in attributes.items()]


def _id(hex_id: str | None, size: int) -> bytes:
    data = bytes.fromhex(hex_id or "")
    if len(data) != size or not any(data):
        raise ValueError(f"not a {size}-byte id: {hex_id!r}")
    return data


def otlp_span(span: Mapping[str, Any]) -> Any:
    """One stored span as an OTLP ``Span``; raises ValueError for ids that are not hex of the right size."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

    failed = span.get("status") == "error"
    status = Status(code=Status.STATUS_CODE_ERROR if failed else Status.STATUS_CODE_OK,
                    message=(span.get("error") or "") if failed else "")
    attributes = {**(span.get("attributes") or {}), "aigentflow.span.kind": span.get("kind") or "",
                  "aigentflow.run_id": span.get("run_id") or "", "aigentflow.tenant_id": span.get("tenant_id") or ""}
    return Span(
        trace_id=_id(span["trace_id"], 16), span_id=_id(span["span_id"], 8),
        parent_span_id=_id(span["parent_id"], 8) if span.get("parent_id") else b"",
        name=span["name"],
        kind=Span.SPAN_KIND_CLIENT if span.get("kind") in CLIENT_KINDS else Span.SPAN_KIND_INTERNAL,
        start_time_unix_nano=int(span["start_ns"]), end_time_unix_nano=max(int(span["end_ns"]), int(span["start_ns"])),
        attributes=_key_values(attributes), status=status,
    )  # fmt: skip


def export_request(spans: Iterable[Mapping[str, Any]]) -> tuple[Any, int]:
    """An ``ExportTraceServiceRequest`` holding ``spans``, and how many were skipped as malformed."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans

    converted, skipped = [], 0
    for one in spans:
        try:
            converted.append(otlp_span(one))
        except (ValueError, KeyError, TypeError):
            skipped += 1
    resource = Resource(attributes=_key_values({"service.name": "aigentflow", "service.version": __version__}))
    scope = InstrumentationScope(name="aigentflow", version=__version__)
    request = ExportTraceServiceRequest(resource_spans=[
        ResourceSpans(resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=converted)])])
    return request, skipped


def send(url: str, spans: Sequence[Mapping[str, Any]], *, headers: Mapping[str, str] | None = None,
         timeout_s: float = TIMEOUT_S, batch: int = BATCH_SPANS) -> ExportReport:
    """POST ``spans`` to the collector at ``url`` in batches; raises ``ExportFailed`` when it cannot be
    reached or answers with an error (spans of earlier batches were then sent: a collector dedupes nothing,
    so the message says how many)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    target = endpoint(url)
    report = ExportReport(url=target)
    for start in range(0, len(spans), batch):
        request, skipped = export_request(spans[start:start + batch])
        report.skipped += skipped
        http = urllib.request.Request(target, data=request.SerializeToString(), method="POST",
                                      headers={"Content-Type": CONTENT_TYPE, **(headers or {})})
        sent = f" ({report.spans} spans were sent before)" if report.spans else ""
        try:
            with urllib.request.urlopen(http, timeout=timeout_s) as answer:
                body = answer.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace").strip()
            raise ExportFailed(f"the OTLP collector at {target} refused the spans: HTTP {exc.code} {exc.reason}"
                               f"{': ' + detail if detail else ''}{sent}. Check the URL (its OTLP/HTTP port, "
                               "usually 4318) and any --header the collector needs.") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ExportFailed(f"could not reach the OTLP collector at {target}: {reason}{sent}. Check the URL "
                               "and that the collector is running; nothing else was changed.") from None
        response = ExportTraceServiceResponse()
        if body and answer.headers.get("Content-Type", "").startswith(CONTENT_TYPE):
            response.ParseFromString(body)
        report.rejected += response.partial_success.rejected_spans
        report.spans += len(request.resource_spans[0].scope_spans[0].spans)
        report.requests += 1
    return report
