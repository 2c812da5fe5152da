"""What a generation reads: the finding, the role's current spec and instructions, and cases drawn from
the role's traces (each agent call of the role with its graded outcome). No Ray, litellm or DSPy.

Everything here is made deterministic (no run ids, span ids or times; numbers in messages become N) and
redacted, so that the same traces give the same prompts (and a recorded cassette replays them)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from aigentflow.exceptions import UsageError

MAX_CASES = 8
"""Cases kept per generation (the most telling: failures first, then by step)."""

_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class Inputs:
    """What the DSPy program reads (all text; see ``program.ProposeRoleChange``)."""

    role: str
    current_spec: str
    current_instructions: str
    finding: str
    cases: list[dict[str, Any]]
    finding_id: str
    cue: str
    """The word the finding is about (its step kind, e.g. ``test``): what a proposal must address."""


def _attrs(span: dict[str, Any]) -> dict[str, Any]:
    value = span.get("attributes") or {}
    return json.loads(value) if isinstance(value, str) else dict(value)


def normalise(text: str) -> str:
    return _NUMBER.sub("N", " ".join(str(text).split()))[:200]


def role_cases(spans: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    """One case per call of ``role`` in the traces: its step and whether the work it did held up (the
    call's own status, else the first test command after it in the same step, before its next call)."""
    by_parent: dict[Any, list[dict[str, Any]]] = {}
    for span in spans:
        by_parent.setdefault((span.get("run_id"), span.get("parent_id")), []).append(span)
    cases = []
    for siblings in by_parent.values():
        siblings.sort(key=lambda s: int(s["start_ns"]))
        calls = [s for s in siblings if s["name"] == f"invoke_agent {role}"]
        for index, call in enumerate(calls):
            attrs = _attrs(call)
            outcome, detail = "accepted", ""
            if call.get("status") == "error":
                outcome, detail = "failed", normalise(call.get("error") or "error")
            else:
                until = int(calls[index + 1]["start_ns"]) if index + 1 < len(calls) else None
                for later in siblings:
                    start = int(later["start_ns"])
                    if start < int(call["end_ns"]) or (until is not None and start >= until):
                        continue
                    if later["name"].startswith("exec ") and _attrs(later).get("aigentflow.command.kind") == "test":
                        if later.get("status") == "error":
                            outcome, detail = "failed", f"tests {normalise(later.get('error') or 'failed')}"
                        break
            cases.append({"step": str(attrs.get("aigentflow.step", "?")),
                          "attempt": int(attrs.get("aigentflow.attempt", 1)), "outcome": outcome, "detail": detail})
    cases.sort(key=lambda c: (c["outcome"] != "failed", c["step"], c["attempt"]))
    return cases[:MAX_CASES]


def spec_view(spec: Any) -> str:
    """The parts of a spec a proposal may change or must respect, as stable JSON."""
    data = spec.model_dump(mode="json")
    keep = ("name", "version", "description", "steps", "helps", "prompt_layers", "model", "skills", "tools", "budget")
    return json.dumps({k: data[k] for k in keep}, sort_keys=True)


def finding_view(finding: dict[str, Any]) -> str:
    return json.dumps({"kind": finding["kind"], "title": finding["title"], "count": finding["count"],
                       "details": finding["details"]}, sort_keys=True)


def pick_finding(findings: list[dict[str, Any]], pattern: str | None, role: str | None) -> dict[str, Any] | None:
    """The finding ``--pattern`` names (its id), or the highest-scored one about ``--role``; a UsageError for
    an unknown id. None when ``--role`` has no finding (then the cases alone steer the proposal)."""
    if pattern is not None:
        found = next((f for f in findings if f["id"] == pattern), None)
        if found is None:
            known = ", ".join(f["id"] for f in findings[:10]) or "none (run `aigentflow patterns mine`)"
            raise UsageError(f"there is no finding {pattern!r}; findings are: {known}. Nothing was generated.")
        return found
    return next((f for f in findings if f.get("details", {}).get("role") == role), None)


def finding_role(finding: dict[str, Any]) -> str:
    role = finding.get("details", {}).get("role")
    if not role:
        raise UsageError(f"finding {finding['id']} ({finding['title']}) names no role to improve; give --role too.")
    return str(role)
