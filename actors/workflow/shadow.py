"""A workflow's edit steps, shadowed: the candidate version of a role in its shadow stage makes its edits
for the same task, tested in a scratch worktree of its own (``aigentflow.run.shadow``).

For an edit step (a build task's implementation, a rework, a fix attempt) whose role is shadowed, the
candidate gets the call the incumbent got (same task, files, tests written first, architecture),
sent at the same moment. On a thread of its own, beside the task's pipeline, its edits are applied in
a detached worktree at the commit the incumbent started from (the task branch with the tester's tests,
made by the Git Agent: no branch, its git not in the run's usage or operations), the task's test command
runs there in the sandbox, and the worktree is removed. Nothing of it is committed or merged; its model
calls are not in the step's (so neither in the run's budget nor its steps), and the incumbent's outcome
decides the run. Both sides are recorded once both are known (``ShadowPlayer.played``). The kill switch is
read when a step starts and again before the candidate's edits are tested: a shadow stops there.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aigentflow.checks.build import BuildSpec, TaskOutcome
from aigentflow.roles.canary import evolution_off
from aigentflow.run.protocol import AgentResult
from aigentflow.run.shadow import SHADOW_ATTRIBUTE, build_side, mark, shadow_call
from aigentflow.tracing.spans import command_span, git_span, make_span, new_span_id

if TYPE_CHECKING:
    from aigentflow.run.protocol import AgentCall

MAX_SHADOWS = 4
"""Shadowed edit steps played at once (each is a model call, then a sandboxed test run)."""


class EditShadows:
    """The shadows of one workflow's edit steps; ``join`` waits for them (at the end of the step)."""

    def __init__(self, workflow: Any) -> None:
        self.wf = workflow
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future[None]] = []
        self._lock = threading.Lock()
        self._halves: dict[str, dict[str, Any]] = {}

    def start(self, role: str, call: AgentCall, head: str | None, kind: str) -> str | None:
        """Start the candidate's play of this edit step, if ``role`` is shadowed now; its key, for
        ``incumbent``, or None."""
        player = getattr(self.wf.orch, "shadows", None)
        if player is None or kind != "implement" or not head:
            return None
        candidate = player.candidate(role)
        if candidate is None:
            return None
        span_id = new_span_id()
        played = shadow_call(call, candidate, span_id)
        pending = self.wf.orch.ask(role, played, self.wf.me)  # sent now: it answers beside the incumbent
        key = f"{call.step}#{span_id}"
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=MAX_SHADOWS, thread_name_prefix="shadow")
            self._futures.append(self._pool.submit(self._play, key, role, call, candidate, head, pending,
                                                   span_id, time.time_ns(), time.perf_counter()))
        return key

    def incumbent(self, key: str | None, role: str, change: AgentResult, outcome: TaskOutcome,
                  seconds: float) -> None:
        """The incumbent's side of the shadowed step ``key`` (what its edits did, from the same start)."""
        if key is None:
            return
        self._half(key, "incumbent", build_side(self.wf.orch.shadows.versions.get(role, ""), change,
                                                outcome.status, outcome.detail, outcome.tests, seconds), role)

    def join(self) -> None:
        """Wait for every shadow started (each catches its own failure), then stop the threads."""
        with self._lock:
            futures, pool = list(self._futures), self._pool
        for future in futures:
            future.result()
        if pool is not None:
            pool.shutdown(wait=True)

    # -- on the shadow's thread ---------------------------------------------------------------------

    def _play(self, key: str, role: str, call: AgentCall, candidate: Any, head: str, pending: Any,
              span_id: str, started_ns: int, clock: float) -> None:
        import ray

        spans: list[dict[str, Any]] = []
        try:
            change: AgentResult = ray.get(pending)
        except Exception as exc:  # noqa: BLE001 - a crashed shadow is a failing grade, never the run's failure
            change = AgentResult(role=role, output={}, error=f"the shadow crashed: {type(exc).__name__}: {exc}",
                                 error_kind="crash")
        if change.error_kind == "paused" or evolution_off(self.wf.orch.paths.state_dir):
            self._half(key, "dropped", {})  # the run is pausing, or evolution was switched off: no shadow
            return
        spans += mark(list(change.spans), candidate.version)
        outcome = TaskOutcome(call.inputs["task"]["id"], "error", detail=f"the candidate failed: {change.error}")
        if change.ok:
            try:
                outcome = self._test(call, change, head, span_id, candidate.version, spans)
            except Exception as exc:  # noqa: BLE001 - the scratch or the sandbox failed: a failing grade
                outcome.detail = f"the shadow's test run failed: {type(exc).__name__}: {str(exc)[:500]}"
        seconds = time.perf_counter() - clock
        half = build_side(candidate.version, change, outcome.status, outcome.detail, outcome.tests, seconds)
        status = "ok" if half["tests_passed"] else "error"
        spans.insert(0, make_span(
            f"shadow {role}", "shadow", run_id=call.run_id, parent_id=call.parent_span_id, tenant_id=call.tenant_id,
            span_id=span_id, start_ns=started_ns, end_ns=time.time_ns(), status=status,
            error=None if half["tests_passed"] else (half["error"] or outcome.detail or None),
            attributes={SHADOW_ATTRIBUTE: True, "aigentflow.shadow.version": candidate.version,
                        "aigentflow.shadow.step": call.step, "aigentflow.shadow.grade": half["grade"],
                        "aigentflow.shadow.tests_passed": half["tests_passed"],
                        "aigentflow.cost_usd": change.cost_usd}))
        self._half(key, "candidate", {**half, "spans": spans})

    def _test(self, call: AgentCall, change: AgentResult, head: str, span_id: str, version: str,
              spans: list[dict[str, Any]]) -> TaskOutcome:
        """The candidate's edits applied in a detached scratch worktree at ``head`` and tested there; the
        scratch removed whatever happens."""
        import ray

        wf, task = self.wf, call.inputs["task"]
        label = call.step.replace("/", "-")
        scratch = ray.get(wf.git.shadow_worktree.remote(wf.run_id, label, head))
        operations = list(scratch["operations"])
        try:
            spec = BuildSpec(wf.run_id, task["id"], task["title"], scratch["path"], "", head, wf.repo_node,
                             wf.build.test_command, wf.limits, wf.build.network, kind="implement")
            outcome: TaskOutcome = ray.get(wf.run_task(spec, change.output, here=True))
        finally:
            operations += ray.get(wf.git.remove_shadow_worktree.remote(scratch["path"]))
            spans += mark([git_span(op, run_id=call.run_id, parent_id=span_id, tenant_id=call.tenant_id)
                           for op in operations], version)
        spans += mark([command_span(c, run_id=call.run_id, kind="test", parent_id=span_id, tenant_id=call.tenant_id,
                                    step=call.step) for c in outcome.commands], version)
        return outcome

    def _half(self, key: str, name: str, half: dict[str, Any], role: str = "") -> None:
        """One side of a shadowed step is known; with both, the record is written (``ShadowPlayer.played``)."""
        with self._lock:
            halves = self._halves.setdefault(key, {})
            halves[name] = half
            if role:
                halves["role"] = role
            if not ({"incumbent", "candidate"} <= set(halves) or {"incumbent", "dropped"} <= set(halves)):
                return
            del self._halves[key]
        if "dropped" in halves:
            return
        candidate = dict(halves["candidate"])
        spans = candidate.pop("spans")
        record = {"run_id": self.wf.run_id, "step": key.rsplit("#", 1)[0], "role": halves["role"],
                  "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                  "incumbent": halves["incumbent"], "candidate": candidate}
        self.wf.orch.shadows.played(halves["role"], record, spans)
