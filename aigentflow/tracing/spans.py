"""Spans: one record per state transition, agent call, model call, command or hook of a run.

Names and attributes follow OpenTelemetry's GenAI semantic conventions (``invoke_agent <role>``,
``chat <model>``, ``gen_ai.*`` attributes) plus aigentflow's own ``aigentflow.*`` attributes.
A span is a plain dict so that it crosses process boundaries (Ray actors) as is.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypedDict

AttributeValue = str | int | float | bool

SPAN_FIELDS = (
    "span_id", "trace_id", "parent_id", "run_id", "tenant_id", "name", "kind",
    "start_ns", "end_ns", "status", "error", "attributes",
)  # fmt: skip

# Attribute names, so that producers and readers agree on spelling.
OPERATION_NAME = "gen_ai.operation.name"
AGENT_NAME = "gen_ai.agent.name"
REQUEST_MODEL = "gen_ai.request.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
COST_USD = "aigentflow.cost_usd"
STATE_FROM = "aigentflow.state.from"
STATE_TO = "aigentflow.state.to"
PROMPT_HASH = "aigentflow.prompt_hash"


class Span(TypedDict):
    """One unit of work; times are ``time.time_ns()``, status is "ok" or "error".

    ``kind`` is one of "run", "state", "agent", "model", "command", "hook", "tool",
    "intervention" (open-ended: readers treat an unknown kind like any other).
    """

    span_id: str
    trace_id: str
    parent_id: str | None
    run_id: str
    tenant_id: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    status: str
    error: str | None
    attributes: dict[str, AttributeValue]


SpanSink = Callable[[Span], object]
"""Where finished spans go: a list's ``append``, a ``SegmentWriter.add``, an actor's buffer."""


def new_span_id() -> str:
    """A random 64-bit span id as 16 hex characters."""
    return os.urandom(8).hex()


def trace_id_for(run_id: str) -> str:
    """The 128-bit trace id (32 hex characters) of a run, the same for every call."""
    return hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:32]


def agent_span_name(role: str) -> str:
    """The GenAI span name of an agent call: ``invoke_agent <role>``."""
    return f"invoke_agent {role}"


def model_span_name(model: str) -> str:
    """The GenAI span name of a model call: ``chat <model>``."""
    return f"chat {model}"


def make_span(
    name: str,
    kind: str,
    *,
    run_id: str,
    parent_id: str | None = None,
    tenant_id: str = "default",
    attributes: Mapping[str, AttributeValue] | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> Span:
    """A span with a fresh id; ``end_ns`` defaults to ``start_ns`` (an instant: a transition)."""
    start = time.time_ns() if start_ns is None else start_ns
    return Span(
        span_id=new_span_id(),
        trace_id=trace_id_for(run_id),
        parent_id=parent_id,
        run_id=run_id,
        tenant_id=tenant_id,
        name=name,
        kind=kind,
        start_ns=start,
        end_ns=start if end_ns is None else end_ns,
        status="ok",
        error=None,
        attributes=dict(attributes or {}),
    )


@contextmanager
def span(
    name: str,
    kind: str,
    *,
    run_id: str,
    sink: SpanSink,
    parent_id: str | None = None,
    tenant_id: str = "default",
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Iterator[Span]:
    """Time the block as one span and pass it to ``sink`` when the block ends.

    The yielded span can be given attributes inside the block (token counts known only after the
    call) and its ``span_id`` is the ``parent_id`` of nested spans. On an exception the span is
    recorded with status ``error`` and the exception text, and the exception propagates.
    """
    record = make_span(
        name, kind, run_id=run_id, parent_id=parent_id, tenant_id=tenant_id, attributes=attributes
    )
    try:
        yield record
    except BaseException as exc:
        record["status"] = "error"
        record["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        record["end_ns"] = time.time_ns()
        sink(record)
