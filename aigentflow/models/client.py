"""Structured model calls through litellm: a prompt in, a validated pydantic object out.

An invalid reply (not JSON, wrong schema, too large) is retried with the validation error fed back,
``max_validation_retries`` times, then the step fails with a clear error. Each call is checked
against the emergency gate, the run's call budget and the tenant's quota first, and produces a ``chat <model>`` span
and a record (for cassettes) with its tokens, cost and prompt hash.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from aigentflow.cluster import metrics
from aigentflow.exceptions import (
    CassetteMissError,
    ModelError,
    RunFailure,
    RunPaused,
)
from aigentflow.models.cassette import MISS_MARKER
from aigentflow.models.spec import ModelSpec, prompt_hash
from aigentflow.models.transport import Transport, TransportError

Gate = Callable[[], None]
"""Called before every model call; raises ``RunPaused`` when the run must stop."""


@dataclass
class CallRecord:
    """One model call: what a cassette stores, and what its span reports."""

    role: str
    step: str
    attempt: int
    prompt_hash: str
    response: Any
    input_tokens: int
    output_tokens: int
    cost_usd: float
    duration_s: float
    drift: str | None = None
    error: str | None = None
    recorded_cost_usd: float = 0.0
    """A replayed call costs nothing; this is what the recorded model charged for it."""
    transient: bool = False
    """The call failed transiently (rate limit, 5xx, timeout) and was retried: no reply to keep."""
    model: str = ""
    """The model that answered (a configured model's fallback, when it did); "" = the one asked for."""
    provider: str = ""
    fallback_from: str = ""
    retries: int = 0
    """Retries and fallbacks litellm's Router made inside the call (a configured model's)."""
    fallbacks: int = 0

    def cassette_entry(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "step": self.step,
            "attempt": self.attempt,
            "prompt_hash": self.prompt_hash,
            "response": self.response,
            "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens},
        }


@dataclass
class StructuredResult:
    output: BaseModel
    calls: list[CallRecord] = field(default_factory=list)


ToolHandler = Callable[[list[dict[str, Any]]], str]
"""Runs the tool calls a model asked for; returns the message that reports their results."""


def tool_request(data: Any) -> list[dict[str, Any]] | None:
    """The calls in a ``{"tool_calls": [{"tool": ..., "arguments": {...}}]}`` reply, else None.

    A malformed request raises ``ValueError`` (fed back to the model like any unusable reply)."""
    if not isinstance(data, dict) or set(data) != {"tool_calls"}:
        return None
    calls = data["tool_calls"]
    if not isinstance(calls, list) or not calls:
        raise ValueError("tool_calls must be a non-empty list of {\"tool\": ..., \"arguments\": {...}}")
    for call in calls:
        if not isinstance(call, dict) or not isinstance(call.get("tool"), str) or \
                not isinstance(call.get("arguments", {}), dict):
            raise ValueError(  # noqa: TRY004 (a reply to feed back to the model, not a programming error)
                "each tool call needs \"tool\" (server/tool) and \"arguments\" (an object)")
    return [{"tool": c["tool"], "arguments": c.get("arguments", {})} for c in calls]


def extract_json(text: str) -> Any:
    """The JSON object in a reply: the whole text, a fenced block, or the outermost braces."""
    stripped = text.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", stripped, re.DOTALL)
    candidates = [stripped]
    if fenced:
        candidates.append(fenced.group(1).strip())
    start, end = stripped.find("{"), stripped.rfind("}")
    if 0 <= start < end:
        candidates.append(stripped[start : end + 1])
    last_error: Exception | None = None
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError as exc:
            last_error = exc
    raise ValueError(f"the reply is not JSON ({last_error})")


class ModelClient:
    """Calls one model for one agent; see the module docstring."""

    def __init__(self, spec: ModelSpec, *, gate: Gate | None = None, budget: int | None = None,
                 run_id: str = "", transport: Transport | None = None, quota: Any = None,
                 tenant_id: str = "default") -> None:
        """``quota``: the tenant's ``Allowance`` when the step started (``aigentflow.tenants.quotas``), counted
        down here by each call's tokens and cost; an exhausted one pauses the run (``RunPaused``)."""
        self.spec = spec
        self.run_id = run_id
        self.gate = gate
        self.budget = budget
        self.calls_made = 0
        self.quota = quota
        self.tenant_id = quota.tenant_id if quota is not None else tenant_id
        self.tokens_used = 0
        self.cost_used = 0.0
        if transport is None:
            from aigentflow.models.transport import LocalTransport

            transport = LocalTransport(spec)
        self.transport = transport

    def call_structured(
        self, messages: list[dict[str, Any]], schema: type[BaseModel], *, role: str, step: str,
        tools: ToolHandler | None = None, max_tool_rounds: int = 0,
    ) -> StructuredResult:
        """The validated output; a failure carries the calls made so far as ``exc.calls``.

        With ``tools``, a reply that is only ``{"tool_calls": [...]}`` is not an answer: the handler
        runs the calls and its text goes back to the model, at most ``max_tool_rounds`` times."""
        result_calls: list[CallRecord] = []
        try:
            return self._call_structured(messages, schema, role=role, step=step, result_calls=result_calls,
                                         tools=tools, max_tool_rounds=max_tool_rounds)
        except (RunFailure, RunPaused) as exc:
            exc.calls = result_calls  # type: ignore[attr-defined]
            raise

    def _call_structured(
        self, messages: list[dict[str, Any]], schema: type[BaseModel], *, role: str, step: str,
        result_calls: list[CallRecord], tools: ToolHandler | None, max_tool_rounds: int,
    ) -> StructuredResult:
        conversation = list(messages)
        attempts = 1 + self.spec.max_validation_retries
        failures, tool_rounds, attempt = 0, 0, 0
        last_problem = ""
        while failures < attempts:
            attempt += 1  # every model call of the step: what a cassette entry is matched by
            record, text = self._call(conversation, role=role, step=step, attempt=attempt, log=result_calls)
            result_calls.append(record)
            try:
                if len(text.encode()) > self.spec.max_reply_bytes:
                    raise ValueError(
                        f"the reply is {len(text.encode())} bytes, over the limit of {self.spec.max_reply_bytes}"
                    )
                data = extract_json(text)
                requested = tool_request(data) if tools is not None else None
                if requested is not None:
                    if tool_rounds >= max_tool_rounds:
                        raise ValueError(f"it asks for tools again after {max_tool_rounds} round(s) of tool calls; "
                                         "answer now, without tools")
                    tool_rounds += 1
                    conversation = [*conversation, {"role": "assistant", "content": text[:20_000]},
                                    {"role": "user", "content": tools(requested)}]
                    continue
                output = schema.model_validate(data)
                return StructuredResult(output=output, calls=result_calls)
            except (ValueError, ValidationError) as exc:
                failures += 1
                last_problem = _describe_problem(exc)
                record.error = last_problem
                conversation = [
                    *conversation,
                    {"role": "assistant", "content": text[:20_000]},
                    {
                        "role": "user",
                        "content": "Your reply could not be used: "
                        + last_problem
                        + "\nReply again with only one JSON object that matches the schema.",
                    },
                ]
        raise ModelError(
            f"{role}: the model's reply did not match {schema.__name__} after {attempts} attempts; "
            f"last problem: {last_problem}"
        )

    def _call(self, messages: list[dict[str, Any]], *, role: str, step: str, attempt: int,
              log: list[CallRecord]) -> tuple[CallRecord, str]:
        """One model call, retried with backoff while it fails transiently; each try is logged and
        counts against the budget."""
        phash = prompt_hash(messages)
        for retry in range(self.spec.max_transient_retries + 1):
            if self.gate is not None:
                self.gate()
            if self.quota is not None:
                refused = self.quota.refusal(self.tokens_used, self.cost_used)
                if refused:
                    raise RunPaused(refused)
            if self.budget is not None and self.calls_made >= self.budget:
                raise ModelError(
                    f"{role}: the run's model-call budget is used up ({self.budget} calls left at the start of "
                    "this step); raise model.max_calls_per_run to allow more."
                )
            self.calls_made += 1
            started = time.perf_counter()
            try:
                reply = self.transport.complete(messages, {
                    "aigentflow": {"role": role, "step": step, "attempt": attempt, "run_id": self.run_id,
                                   "lenient": self.spec.lenient, "cassette_source": self.spec.cassette_source,
                                   "tenant_id": self.tenant_id,
                                   "calls_per_minute": self.quota.calls_per_minute if self.quota else None}})
                break
            except TransportError as exc:
                metrics.record_model_call(self.spec.name, "transient_error" if exc.transient else "error",
                                          seconds=time.perf_counter() - started)
                if not exc.transient or MISS_MARKER in exc.message:
                    raise _model_failure(self.spec.name, role, exc) from None
                log.append(CallRecord(role=role, step=step, attempt=attempt, prompt_hash=phash, response=None,
                                      input_tokens=0, output_tokens=0, cost_usd=0.0,
                                      duration_s=time.perf_counter() - started,
                                      error=f"{exc.kind}: {exc.message[:300]}", transient=True))
                if retry == self.spec.max_transient_retries:
                    raise ModelError(
                        f"{role}: the call to {self.spec.name} kept failing transiently ({exc.kind}) "
                        f"after {retry + 1} tries; last error: {exc.message[:300]}"
                    ) from None
                time.sleep(self.spec.retry_backoff_s * (2**retry) * random.uniform(0.8, 1.2))
        duration = time.perf_counter() - started
        self.calls_made += reply.retries + reply.fallbacks  # the Router's own requests count against the budget
        text = reply.text
        input_tokens, output_tokens = reply.input_tokens, reply.output_tokens
        self.tokens_used += input_tokens + output_tokens
        self.cost_used += reply.cost_usd
        fingerprint = reply.fingerprint
        drift = fingerprint.split(":", 1)[1] if fingerprint.startswith("replay-drift:") else None
        try:
            parsed: Any = json.loads(text)
        except json.JSONDecodeError:
            parsed = text
        record = CallRecord(
            role=role, step=step, attempt=attempt, prompt_hash=phash, response=parsed,
            input_tokens=input_tokens, output_tokens=output_tokens,
            cost_usd=reply.cost_usd, duration_s=duration, drift=drift, recorded_cost_usd=reply.recorded_cost_usd,
            model=reply.model or self.spec.name, provider=reply.provider, fallback_from=reply.fallback_from,
            retries=reply.retries, fallbacks=reply.fallbacks,
        )
        metrics.record_model_call(record.model, "ok", input_tokens, output_tokens, record.cost_usd, seconds=duration)
        return record, text


def _describe_problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()[:10]]
        return "it broke the schema: " + "; ".join(parts)
    return str(exc)


def _model_failure(model: str, role: str, exc: TransportError) -> ModelError:
    text = exc.message
    if MISS_MARKER in text:
        return CassetteMissError(text.split(" - ", 1)[-1])
    from aigentflow.models.transport import AUTH_ERRORS

    if exc.kind in AUTH_ERRORS:  # the key was refused or is missing: retrying cannot help
        from aigentflow.models.preflight import credential_failure_message

        return ModelError(credential_failure_message(model, role, exc.kind, text))
    return ModelError(f"{role}: the call to {model} failed ({exc.kind}): {text[:500]}")
