"""Shadow mode in the run path: a candidate version plays a step beside the incumbent, on a copy.

While a rollout is in its shadow stage (``aigentflow.roles.canary.active_shadows``: plain data the
evolution loop writes), every step of a run that the role serves with the incumbent version is played a
second time by the candidate: the same ``AgentCall`` (same inputs, same model), equipped as the candidate
(its prompt layers, its version on the spans), marked ``shadow``. The candidate's output is graded the way
the run grades the incumbent's (a step whose structured output validates passes; a build task's edits
are tested in a scratch worktree of their own, ``actors.workflow``) and then discarded: no file is
written, nothing is committed or merged, its model calls count neither against the run's budget nor in
its steps, and the run's result is the incumbent's. What happened is recorded: one line per step in
``.aigentflow/shadow/<role>.jsonl`` (both versions, grades, cost, latency), a ``shadow.played`` audit
entry, and a ``shadow <role>`` span (kind ``shadow``) over the candidate's agent spans, all marked
``aigentflow.shadow``. A shadow that fails or crashes is a failing grade, never the run's failure.
The kill switch is read at every step: shadows stop at the next boundary.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aigentflow.roles.canary import active_shadows, record_shadow
from aigentflow.run.protocol import AgentCall, AgentResult
from aigentflow.tracing.spans import make_span, new_span_id

if TYPE_CHECKING:
    from aigentflow.project.paths import ProjectPaths

SHADOW_ATTRIBUTE = "aigentflow.shadow"
SHADOW_AUDIT = "shadow.played"


def grade(result: AgentResult) -> float:
    """A plain step's grade: 1.0 when its output validated (what the run requires of it), else 0.0; a
    workflow step's edit tests give their share passing instead (``grade`` in the record)."""
    return 1.0 if result.ok else 0.0


def side(version: str, result: AgentResult, seconds: float, score: float | None = None) -> dict[str, Any]:
    """One version's half of a shadow record."""
    return {"version": version, "ok": result.ok, "grade": grade(result) if score is None else score,
            "cost_usd": result.cost_usd, "seconds": round(seconds, 3), "model_calls": result.model_calls,
            "error": (result.error or "")[:500] or None}


def tests_grade(status: str, tests: dict[str, Any] | None) -> float:
    """A build task's grade: the share of its test cases passing (a JUnit report), else 1.0 when its tests
    passed; 0.0 when its edits were refused or never applied."""
    if status not in ("passed", "failed"):
        return 0.0
    results = (tests or {}).get("results") or {}
    if results.get("source") == "junit" and results.get("total"):
        return round(int(results.get("passed", 0)) / int(results["total"]), 3)
    return 1.0 if status == "passed" else 0.0


def build_side(version: str, result: AgentResult, status: str, detail: str, tests: dict[str, Any] | None,
               seconds: float) -> dict[str, Any]:
    """One version's half of a build task's shadow record: ``ok`` when its edits were applied and tested,
    ``tests_passed`` when the task's tests then passed, ``grade`` the share of its test cases passing."""
    error = result.error if not result.ok else detail if status not in ("passed", "failed") else None
    return {**side(version, result, seconds, tests_grade(status, tests)), "ok": status in ("passed", "failed"),
            "tests_passed": status == "passed", "status": status, "error": (error or "")[:500] or None,
            "tests": {k: v for k, v in ((tests or {}).get("results") or {}).items() if k != "cases"} or None,
            "test_seconds": (tests or {}).get("duration_s")}


def mark(spans: list[dict[str, Any]], version: str) -> list[dict[str, Any]]:
    """The candidate's spans, marked as a shadow's."""
    for item in spans:
        item["attributes"] = {**item.get("attributes", {}), SHADOW_ATTRIBUTE: True,
                              "aigentflow.shadow.version": version}
    return spans


def shadow_call(call: AgentCall, candidate: Any, parent_span_id: str) -> AgentCall:
    """``call`` as the candidate version (an ``AgentSpec``) plays it, as a shadow."""
    return replace(call, shadow=True, agent_name=candidate.name, agent_version=candidate.version,
                   prompt_layers=tuple(candidate.role_layers), parent_span_id=parent_span_id, skills="",
                   skill_picks=())


class ShadowPlayer:
    """The shadows of one run (see the module docstring); the engine asks it at every step."""

    def __init__(self, paths: ProjectPaths, versions: dict[str, str]) -> None:
        """``versions``: role -> the version the run uses (a shadow plays only beside its incumbent)."""
        self.paths = paths
        self.versions = versions
        self._specs: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._played: list[dict[str, Any]] = []

    def candidate(self, role: str) -> Any:
        """The candidate ``AgentSpec`` that shadows ``role`` in this run now, or None (read at every step:
        the kill switch stops shadows at the next one)."""
        rollout = active_shadows(self.paths.state_dir).get(role)
        if not rollout or self.versions.get(role) != rollout.get("incumbent"):
            return None
        key = (role, str(rollout.get("candidate")))
        with self._lock:
            if key not in self._specs:
                self._specs[key] = self._load(key)
            return self._specs[key]

    def _load(self, key: tuple[str, str]) -> Any:
        from aigentflow.exceptions import ConfigError
        from aigentflow.roles.registry import project_registry

        try:
            return project_registry(self.paths).get(*key).spec
        except ConfigError:  # a candidate not installed: nothing to play (the evolution side says so)
            return None

    def played(self, role: str, record: dict[str, Any], spans: list[dict[str, Any]]) -> None:
        """A shadow played inside a workflow step (a build task's edits, ``actors.workflow.shadow``): its
        record appended now, its spans and audit entry kept for the engine to write after the step
        (``drain``; the engine is the run's only writer of traces and audit)."""
        record_shadow(self.paths.state_dir, role, record)
        with self._lock:
            self._played.append({"role": role, "record": record, "spans": spans})

    def drain(self) -> list[dict[str, Any]]:
        """The shadows played inside workflow steps since the last call: {role, record, spans} each."""
        with self._lock:
            taken, self._played = self._played, []
        return taken

    def play(self, role: str, call: AgentCall, invoke: Any, incumbent: AgentResult, incumbent_s: float,
             tenant_id: str = "default") -> dict[str, Any] | None:
        """Play ``call`` with the candidate of ``role`` (if one shadows it): the record and the shadow span,
        or None. ``invoke(role, call)`` is the run's own way of calling an agent."""
        candidate = self.candidate(role)
        if candidate is None:
            return None
        span_id, started = new_span_id(), time.time_ns()
        clock = time.perf_counter()
        try:
            result = invoke(role, shadow_call(call, candidate, span_id))
        except Exception as exc:  # noqa: BLE001 - a crashed shadow is a failing grade, never the run's failure
            result = AgentResult(role=role, output={}, error=f"the shadow crashed: {type(exc).__name__}: {exc}",
                                 error_kind="crash")
        seconds = time.perf_counter() - clock
        record = {"run_id": call.run_id, "step": call.step, "role": role,
                  "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                  "incumbent": side(self.versions[role], incumbent, incumbent_s),
                  "candidate": side(candidate.version, result, seconds)}
        record_shadow(self.paths.state_dir, role, record)
        span = make_span(f"shadow {role}", "shadow", run_id=call.run_id, parent_id=call.parent_span_id,
                         tenant_id=tenant_id, span_id=span_id, start_ns=started, end_ns=time.time_ns(),
                         status="ok" if result.ok else "error", error=result.error,
                         attributes={SHADOW_ATTRIBUTE: True, "aigentflow.shadow.version": candidate.version,
                                     "aigentflow.shadow.incumbent": self.versions[role],
                                     "aigentflow.shadow.grade": record["candidate"]["grade"],
                                     "aigentflow.shadow.incumbent_grade": record["incumbent"]["grade"],
                                     "aigentflow.cost_usd": result.cost_usd})
        return {"record": record, "spans": [span, *mark(result.spans, candidate.version)]}
