"""Spans: one record per state transition, agent call, model call, command or hook of a run.

Names and attributes follow OpenTelemetry's GenAI semantic conventions (``invoke_agent <role>``,
``chat <model>``, ``gen_ai.*`` attributes) plus aigentflow's own ``aigentflow.*`` attributes.
A span is a plain dict so that it crosses process boundaries (Ray actors) as is.

Every span a run records is built here, by a named builder: ``run_span``, ``state_span``,
``transition_span`` (the engine), ``agent_spans`` (an agent call and its ``chat`` model calls),
``tool_span`` (the Tool Router), ``task_span`` (the workflows' tasks, merges and suites),
``command_span`` (a sandboxed command), ``git_span`` (a Git Agent operation) and ``decision_span``
(a human's approve or resume).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from aigentflow.models.client import CallRecord
    from aigentflow.run.protocol import AgentCall

AttributeValue = str | int | float | bool

SPAN_FIELDS = (
    "span_id", "trace_id", "parent_id", "run_id", "tenant_id", "name", "kind",
    "start_ns", "end_ns", "status", "error", "attributes",
)  # fmt: skip

# Attribute names, so that producers and readers agree on spelling.
OPERATION_NAME = "gen_ai.operation.name"
AGENT_NAME = "gen_ai.agent.name"
AGENT_VERSION = "gen_ai.agent.version"
AGENT_ORIGIN = "aigentflow.agent.origin"
"""builtin, project or generated: a generated version's spans say so (the kill switch's ground truth)."""
TOOL_NAME = "gen_ai.tool.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
PROVIDER_NAME = "gen_ai.provider.name"
FALLBACK_FROM = "aigentflow.model.fallback_from"
ROUTER_RETRIES = "aigentflow.model.router_retries"
ROUTER_FALLBACKS = "aigentflow.model.router_fallbacks"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
COST_USD = "aigentflow.cost_usd"
STATE_FROM = "aigentflow.state.from"
STATE_TO = "aigentflow.state.to"
REASON = "aigentflow.reason"
PROMPT_HASH = "aigentflow.prompt_hash"
PROCESS_EXECUTABLE = "process.executable.name"
PROCESS_EXIT_CODE = "process.exit.code"
COMMAND_KIND = "aigentflow.command.kind"
GIT_OPERATION = "aigentflow.git.operation"
DECISION = "aigentflow.decision"
SKILLS = "aigentflow.skills"
"""The skills an agent call's prompt carried, comma-separated."""
SKILLS_WITHHELD = "aigentflow.skills.withheld"
"""Skills picked as relevant to an agent call that its role version may not use, comma-separated."""
TASK_LANGUAGE = "aigentflow.task.language"
"""The language most of a build task's changed files are in."""


class Span(TypedDict):
    """One unit of work; times are ``time.time_ns()``, status is "ok" or "error".

    ``kind`` is one of "run", "state", "transition", "agent", "model", "command", "git", "task",
    "merge", "hook", "tool", "intervention" (open-ended: readers treat an unknown kind like any other).
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


def root_span_id(run_id: str) -> str:
    """The id of a run's root span, known before the span is written (its states' parent)."""
    return trace_id_for(run_id)[:16]


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
    span_id: str | None = None,
    status: str = "ok",
    error: str | None = None,
) -> Span:
    """A span (with a fresh id unless given); ``end_ns`` defaults to ``start_ns`` (an instant)."""
    start = time.time_ns() if start_ns is None else start_ns
    return Span(
        span_id=new_span_id() if span_id is None else span_id,
        trace_id=trace_id_for(run_id),
        parent_id=parent_id,
        run_id=run_id,
        tenant_id=tenant_id,
        name=name,
        kind=kind,
        start_ns=start,
        end_ns=start if end_ns is None else end_ns,
        status=status,
        error=error,
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


# -- the spans of a run, one builder each -----------------------------------------------------------


def _moved(from_state: str, to_state: str, reason: str | None) -> dict[str, AttributeValue]:
    return {STATE_FROM: from_state, STATE_TO: to_state, **({REASON: reason} if reason else {})}


def run_span(
    run_id: str,
    *,
    start_ns: int,
    end_ns: int,
    state: str,
    model: str,
    request_chars: int,
    tenant_id: str = "default",
    error: str | None = None,
) -> Span:
    """The root span of a run (``invoke_workflow aigentflow``), written when it ends in ``state``;
    an ``error`` (a run that did not complete) makes it an error span."""
    return make_span(
        "invoke_workflow aigentflow", "run", run_id=run_id, tenant_id=tenant_id, start_ns=start_ns,
        end_ns=end_ns, span_id=root_span_id(run_id), status="ok" if error is None else "error", error=error,
        attributes={"aigentflow.request_chars": request_chars, "aigentflow.state": state, REQUEST_MODEL: model},
    )  # fmt: skip


def state_span(
    run_id: str,
    *,
    span_id: str,
    from_state: str,
    to_state: str,
    start_ns: int,
    end_ns: int,
    reason: str | None = None,
    tenant_id: str = "default",
    status: str = "ok",
    error: str | None = None,
    agent: tuple[str, str] | None = None,
) -> Span:
    """The span of the state a run worked in (its step), closed when the run moved to ``to_state``;
    ``span_id`` was chosen when the state began (its agent's span is its child). ``agent``: the (name,
    version) of the role that led the step."""
    attributes = _moved(from_state, to_state, reason)
    if agent:
        attributes.update({AGENT_NAME: agent[0], AGENT_VERSION: agent[1]})
    return make_span(
        f"state {from_state}", "state", run_id=run_id, parent_id=root_span_id(run_id), tenant_id=tenant_id,
        attributes=attributes, start_ns=start_ns, end_ns=end_ns, span_id=span_id,
        status=status, error=error,
    )  # fmt: skip


def transition_span(
    run_id: str,
    *,
    from_state: str,
    to_state: str,
    reason: str | None = None,
    tenant_id: str = "default",
    status: str = "ok",
    error: str | None = None,
) -> Span:
    """An instant: a move between states with no step in between (CREATED -> ANALYZING, a pause)."""
    return make_span(
        f"transition {from_state} -> {to_state}", "transition", run_id=run_id, parent_id=root_span_id(run_id),
        tenant_id=tenant_id, attributes=_moved(from_state, to_state, reason), status=status, error=error,
    )  # fmt: skip


def agent_identity(call: AgentCall, role: str) -> dict[str, AttributeValue]:
    """``gen_ai.agent.name`` (the call's agent name, else the role), ``gen_ai.agent.version`` and
    ``aigentflow.agent.origin`` (if known)."""
    identity: dict[str, AttributeValue] = {AGENT_NAME: call.agent_name or role}
    if call.agent_version:
        identity[AGENT_VERSION] = call.agent_version
    if call.agent_origin:
        identity[AGENT_ORIGIN] = call.agent_origin
    return identity


def agent_spans(
    call: AgentCall,
    *,
    role: str,
    span_id: str,
    start_ns: int,
    end_ns: int,
    prompt_hash: str,
    calls: list[CallRecord],
    status: str = "ok",
    error: str | None = None,
) -> list[Span]:
    """An agent call (``invoke_agent <role>``, with its usage totals) and, as its children, one
    ``chat`` span per model call it made, laid end to end from ``start_ns``."""
    agent = make_span(
        agent_span_name(role), "agent", run_id=call.run_id, parent_id=call.parent_span_id,
        tenant_id=call.tenant_id, start_ns=start_ns, end_ns=end_ns, span_id=span_id, status=status, error=error,
        attributes={
            OPERATION_NAME: "invoke_agent", **agent_identity(call, role),
            "aigentflow.step": call.step, "aigentflow.attempt": call.attempt, PROMPT_HASH: prompt_hash,
            INPUT_TOKENS: sum(c.input_tokens for c in calls), OUTPUT_TOKENS: sum(c.output_tokens for c in calls),
            COST_USD: sum(c.cost_usd for c in calls),
            **({SKILLS: ",".join(p["name"] for p in call.skill_picks)} if call.skill_picks else {}),
            **({SKILLS_WITHHELD: ",".join(call.skills_withheld)} if call.skills_withheld else {}),
        },
    )  # fmt: skip
    spans = [agent]
    cursor = start_ns
    for record in calls:
        spans.append(chat_span(call, role=role, parent_id=span_id, record=record, start_ns=cursor))
        cursor = spans[-1]["end_ns"]
    return spans


def chat_span(call: AgentCall, *, role: str, parent_id: str, record: CallRecord, start_ns: int) -> Span:
    """One model call (``chat <model>``) of an agent call: its tokens, cost, prompt hash, attempt."""
    model = call.model
    replay: dict[str, AttributeValue] = (
        {"aigentflow.replay.recorded_cost_usd": record.recorded_cost_usd, "aigentflow.replay.lenient": model.lenient}
        if model.is_replay else {}
    )  # fmt: skip
    return make_span(
        model_span_name(model.name), "model", run_id=call.run_id, parent_id=parent_id, tenant_id=call.tenant_id,
        start_ns=start_ns, end_ns=start_ns + int(record.duration_s * 1e9),
        status="error" if record.error else "ok", error=record.error,
        attributes={
            OPERATION_NAME: "chat", REQUEST_MODEL: model.name, RESPONSE_MODEL: record.model or model.name,
            **({PROVIDER_NAME: record.provider} if record.provider else {}),
            **({FALLBACK_FROM: record.fallback_from} if record.fallback_from else {}),
            **({ROUTER_RETRIES: record.retries, ROUTER_FALLBACKS: record.fallbacks}
               if record.retries or record.fallbacks else {}), **agent_identity(call, role),
            INPUT_TOKENS: record.input_tokens, OUTPUT_TOKENS: record.output_tokens, COST_USD: record.cost_usd,
            PROMPT_HASH: record.prompt_hash, "aigentflow.attempt": record.attempt,
            "aigentflow.prompt_drift": bool(record.drift), **replay,
        },
    )  # fmt: skip


def tool_span(
    tool_id: str,
    *,
    run_id: str,
    role: str,
    arguments: str,
    result_bytes: int,
    refused: bool,
    is_error: bool,
    start_ns: int,
    end_ns: int,
    parent_id: str | None = None,
    tenant_id: str = "default",
    error: str | None = None,
) -> Span:
    """An MCP tool call (``execute_tool <server/tool>``) made for ``role``; ``arguments`` as shown
    (redacted, cut short); an ``error`` (refused, failed) makes it an error span."""
    return make_span(
        f"execute_tool {tool_id}", "tool", run_id=run_id, parent_id=parent_id, tenant_id=tenant_id,
        start_ns=start_ns, end_ns=end_ns, status="ok" if error is None else "error", error=error,
        attributes={
            OPERATION_NAME: "execute_tool", TOOL_NAME: tool_id, "aigentflow.tool.server": tool_id.partition("/")[0],
            "aigentflow.tool.role": role, "aigentflow.tool.arguments": arguments,
            "aigentflow.tool.result_bytes": result_bytes, "aigentflow.tool.refused": refused,
            "aigentflow.tool.is_error": is_error,
        },
    )  # fmt: skip


def task_span(
    call: AgentCall,
    name: str,
    *,
    kind: str,
    start_ns: int,
    end_ns: int,
    status: str,
    attributes: Mapping[str, AttributeValue],
    error: str | None = None,
) -> Span:
    """A piece of a workflow step (kind ``task``: a build task, the test suite, a fix, a review;
    kind ``merge``: a merge or a conflict resolved), a child of the step's state span."""
    return make_span(
        name, kind, run_id=call.run_id, parent_id=call.parent_span_id, tenant_id=call.tenant_id,
        start_ns=start_ns, end_ns=end_ns, status=status, error=error, attributes=attributes,
    )  # fmt: skip


def command_span(
    command: Mapping[str, object],
    *,
    run_id: str,
    kind: str,
    parent_id: str | None = None,
    tenant_id: str = "default",
    step: str | None = None,
) -> Span:
    """A sandboxed command (``exec <program>``) from its trace record (``ExecResult.trace_record``): the
    program, a hash of the command line (never the line, never an environment value), exit code,
    isolation, what stopped it; ``kind`` says what it was for (test, lint, coverage, gate)."""
    duration_ns = int(float(command.get("duration_s") or 0) * 1e9)
    start = int(command.get("started_ns") or 0) or time.time_ns() - duration_ns
    exit_code, killed = command.get("exit_code"), command.get("killed_reason")
    failed = killed is not None or exit_code != 0
    error = (f"stopped: {killed}" if killed else f"exited {exit_code}") if failed else None
    program = str(command.get("program") or "?")
    attributes: dict[str, AttributeValue] = {
        PROCESS_EXECUTABLE: program, COMMAND_KIND: kind, "aigentflow.command.hash": str(command.get("hash") or ""),
        "aigentflow.command.output_truncated": bool(command.get("output_truncated")),
        "aigentflow.command.leftover_processes": int(command.get("leftover_processes") or 0),
        "aigentflow.command.env_withheld": int(command.get("env_withheld") or 0),
    }
    if exit_code is not None:
        attributes[PROCESS_EXIT_CODE] = int(exit_code)  # type: ignore[call-overload]
    if killed:
        attributes["aigentflow.command.killed_reason"] = str(killed)
    if step:
        attributes["aigentflow.step"] = step
    isolation = command.get("isolation")
    for key, value in (isolation.items() if isinstance(isolation, Mapping) else ()):
        attributes[f"aigentflow.sandbox.{key}"] = str(value)
    return make_span(
        f"exec {program}", "command", run_id=run_id, parent_id=parent_id, tenant_id=tenant_id, start_ns=start,
        end_ns=start + duration_ns, status="error" if failed else "ok", error=error, attributes=attributes,
    )  # fmt: skip


def git_span(
    operation: Mapping[str, object],
    *,
    run_id: str,
    parent_id: str | None = None,
    tenant_id: str = "default",
) -> Span:
    """A Git Agent operation (``git <operation>``: a branch or worktree made, a commit, a merge, a
    prediction) from the record it kept: its times, error and ``aigentflow.git.*`` attributes."""
    name = str(operation["operation"])
    extra = operation.get("attributes")
    attributes: dict[str, AttributeValue] = {GIT_OPERATION: name}
    for key, value in (extra.items() if isinstance(extra, Mapping) else ()):
        if isinstance(value, str | int | float | bool):
            attributes[f"aigentflow.git.{key}"] = value
    error = operation.get("error")
    return make_span(
        f"git {name}", "git", run_id=run_id, parent_id=parent_id, tenant_id=tenant_id,
        start_ns=int(operation["started_ns"]), end_ns=int(operation["ended_ns"]),  # type: ignore[call-overload]
        status="error" if error else "ok", error=str(error) if error else None, attributes=attributes,
    )  # fmt: skip


def decision_span(
    run_id: str,
    *,
    decision: str,
    from_state: str,
    to_state: str,
    waiting_since_ns: int,
    waited_for: str | None,
    by: str,
    tenant_id: str = "default",
) -> Span:
    """A human's decision (``human_decision approve`` or ``resume``) on a run that waited in ``from_state``
    since ``waiting_since_ns`` (the span lasts the wait) because of ``waited_for``; ``by``: who."""
    attributes: dict[str, AttributeValue] = {DECISION: decision, "aigentflow.decision.by": by,
                                             **_moved(from_state, to_state, None)}
    if waited_for:
        attributes["aigentflow.decision.waited_for"] = waited_for
    return make_span(
        f"human_decision {decision}", "intervention", run_id=run_id, parent_id=root_span_id(run_id),
        tenant_id=tenant_id, start_ns=waiting_since_ns, end_ns=max(time.time_ns(), waiting_since_ns),
        attributes=attributes,
    )  # fmt: skip
