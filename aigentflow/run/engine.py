"""The run engine: rule-based routing of one run through the state machine.

It is the body of the Orchestrator actor, kept a plain class so that it can be tested without Ray.
Each step: begin the step (idempotency key run/step/attempt), hand the agent everything it needs,
write the files it returns, then commit the step's result, its artifacts and the next state in ONE
transaction. A run killed anywhere resumes from the store: a committed step is never redone, an
interrupted one is retried under the same key and overwrites the same files.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aigentflow import faults
from aigentflow.cluster import metrics
from aigentflow.emergency import OPERATOR_TENANT, PAUSE_ALL
from aigentflow.exceptions import RunAbandoned, RunFailure, RunPaused, UsageError
from aigentflow.faults import FaultPlan
from aigentflow.project.paths import ProjectPaths
from aigentflow.redact import Redactor
from aigentflow.roles.registry import ActiveRoles
from aigentflow.run import hooks
from aigentflow.run.artifacts import render_summary, write_artifact
from aigentflow.run.inputs import StepInputs
from aigentflow.run.protocol import AgentCall, AgentResult
from aigentflow.run.shadow import SHADOW_AUDIT, ShadowPlayer
from aigentflow.run.statemachine import (
    ROUND_STATES,
    STATES,
    Event,
    Snapshot,
    State,
    base_step,
    enabled_states,
    fire,
    is_terminal,
)
from aigentflow.run.versions import active_roles
from aigentflow.store.records import ModelUsage, RunRecord, StepUsage
from aigentflow.store.sqlite import SQLiteRunStore
from aigentflow.tracing import spans
from aigentflow.tracing.spans import new_span_id
from aigentflow.tracing.writer import SegmentWriter

if TYPE_CHECKING:
    from aigentflow.store.protocol import RunStore
    from aigentflow.tracing.protocol import TraceSink


NEEDS_APPROVAL = "needs_approval"
"""``AgentResult.error_kind`` of a step that stops for a human (a conflict it could not resolve, ...)."""
TESTS_FAILED = "tests_failed"
"""``AgentResult.error_kind`` of a TESTING step whose suite fails with fix rounds left: recorded, then FIXING."""

ROLLOUT_WATCH_TIMEOUT_S = 30.0
"""How long a rollout's watcher (its checks after a run) may take on the run's hook worker."""
TRACE_FLUSH_INTERVAL_S = 1.0
"""A running run's spans reach disk at the first step boundary after this long (readers see them)."""
Invoke = Callable[[str, AgentCall], AgentResult]
OwnerCheck = Callable[[], "str | None"]
"""Asked at every boundary by a hosted engine: why its run must stop (its driver is gone), or None; raises
``RunAbandoned`` when the run must stop at once, writing nothing more."""


@dataclass
class EngineOptions:
    """How the engine drives; plain data so that it travels to the Orchestrator actor."""

    redactor: Redactor = field(default_factory=Redactor)
    model_spec: Any = None
    """The ``ModelSpec`` agents call (with its cassette, for replay models)."""
    record_path: str | None = None
    faults: FaultPlan | None = None
    """The fault points a test turned on (``aigentflow.faults``); the Orchestrator and Git Agent install it."""
    driver_pid: int | None = None
    agent_resource: str = ""
    """A custom Ray resource agent actors need (``run.agent_resource``)."""
    agent_start_timeout_s: float = 120.0
    """How long agents may take to start before the run stops with a clear error."""
    roles: ActiveRoles | None = None
    """The version of each role the run uses; None: resolved from the run's recorded ``agents`` settings."""


def pause_reason(store: RunStore, run: RunRecord) -> str | None:
    """Why the run must stop at this boundary, if it must: the emergency switch or a pause request."""
    if store.get_control(PAUSE_ALL, False, tenant_id=OPERATOR_TENANT):
        return "emergency pause-all is on (`aigentflow admin emergency --resume-all` lifts it)"
    if run.pause_requested:
        return "a pause was requested (Ctrl-C)"
    return None


class RunEngine:
    """Drives one run to COMPLETED, PAUSED, AWAITING_APPROVAL or FAILED; see the module docstring."""

    def __init__(self, paths: ProjectPaths, run_id: str, invoke: Invoke, options: EngineOptions,
                 owner_check: OwnerCheck | None = None) -> None:
        self.paths = paths
        self.owner_check = owner_check
        self.run_id = run_id
        self.invoke = invoke
        self.options = options
        self.store: RunStore = SQLiteRunStore(paths.database)
        self.transitions_made = 0
        self.inputs = StepInputs(paths, self.store, run_id)
        self._stop_flushing = threading.Event()
        run = self.store.get_run(run_id)
        self.enabled = enabled_states(run.flags)
        self.roles = options.roles or active_roles(paths, run.config.agents, run.flags)
        self.redactor = options.redactor
        self.writer: TraceSink = SegmentWriter(paths.traces_dir, self.redactor, run.config.trace.flush_every_spans)
        self.bus = hooks.EventBus(redactor=self.redactor, on_hook_error=self._hook_failed)
        self.bus.subscribe(self._audit)
        from aigentflow.run.hooks import build_user_hooks

        for hook in build_user_hooks(run.config.hooks):
            self.bus.add_user_hook(hook)
        self._watch_rollouts(run)
        self._detect_incidents(run)
        self.shadows = ShadowPlayer(paths, {role: spec.version for role, spec in self.roles.specs.items()})

    def _watch_rollouts(self, run: RunRecord) -> None:
        """The watchers active rollouts name (``aigentflow.roles.canary.watchers``), as hooks on this run's
        end: the rollout's checks run after every run, without a human command. One that cannot be
        loaded is audited (``hook.failed``) and skipped; the run goes on."""
        from aigentflow.roles.canary import watchers

        for entry in watchers(self.paths.state_dir):
            for event in (hooks.RUN_FINISHED, hooks.RUN_FAILED):
                try:
                    hook = hooks.PythonHook(entry, event=event, timeout_s=ROLLOUT_WATCH_TIMEOUT_S)
                except UsageError as exc:
                    self.store.append_audit(hooks.HOOK_FAILED, run.id, {"hook": f"rollout watcher {entry}",
                                                                        "message": str(exc), "event": event})
                    break
                watch, root = hook.function, str(self.paths.root)
                hook.function = lambda event, watch=watch, root=root: watch(root, event)
                self.bus.add_user_hook(hook)

    def _detect_incidents(self, run: RunRecord) -> None:
        """With ``enterprise.incidentResponse`` on, incident detection after the run, as a hook on its end
        (``aigentflow.incidents.hook``: a detached ``aigentflow incidents detect``, never holding the run)."""
        if not run.flags.get("enterprise.incidentResponse"):
            return
        from aigentflow.incidents.hook import ENTRY_POINT

        for event in (hooks.RUN_FINISHED, hooks.RUN_FAILED):
            hook = hooks.PythonHook(ENTRY_POINT, event=event)
            detect, root = hook.function, str(self.paths.root)
            hook.function = lambda event, detect=detect, root=root: detect(root, event)
            self.bus.add_user_hook(hook)

    def roles_needed(self) -> list[str]:
        """The agent roles this run's enabled states use: each step's lead, and the helpers its flags turn on."""
        steps = [STATES[state].step for state in sorted(self.enabled)]
        return self.roles.needed(steps, self.store.get_run(self.run_id).flags)

    # -- events -----------------------------------------------------------------------------------

    def _audit(self, event: hooks.Event) -> None:
        self.store.append_audit(event.name, event.run_id, event.data, at=event.at, tenant_id=event.tenant_id)

    def _hook_failed(self, hook: str, message: str, event: hooks.Event) -> None:
        # Called from the hook worker thread: use a connection of its own.
        store = SQLiteRunStore(self.paths.database)
        try:
            store.append_audit(hooks.HOOK_FAILED, event.run_id, {"hook": hook, "message": message, "event": event.name})
        finally:
            store.close()

    def emit(self, name: str, run: RunRecord, **data: Any) -> None:
        self.bus.emit(name, run.id, tenant_id=run.tenant_id, **data)

    # -- driving ----------------------------------------------------------------------------------

    def _flush_periodically(self) -> None:
        """Off the step path: spans reach disk within a second, so `aigentflow trace` follows a run."""
        while not self._stop_flushing.wait(TRACE_FLUSH_INTERVAL_S):
            self.writer.flush()

    def drive(self, *, resume: bool = False) -> RunRecord:
        run = self.store.get_run(self.run_id)
        self.store.claim(self.run_id, pid=self.options.driver_pid)
        flusher = threading.Thread(target=self._flush_periodically, name="trace-flush", daemon=True)
        flusher.start()
        abandoned = False
        try:
            if resume and run.pause_requested:  # asked for by an interrupted driver; resuming overrides it
                self.store.clear_pause_request(self.run_id)
                run = self.store.get_run(self.run_id)
            if resume and run.state in (State.PAUSED, State.AWAITING_APPROVAL):
                event = Event.RESUME if run.state == State.PAUSED else Event.APPROVE
                waited = run
                run = self._move(run, event)
                self._decided(waited, run, event)
            while not is_terminal(State(run.state)):
                if run.state in (State.PAUSED, State.AWAITING_APPROVAL):
                    return run
                reason = pause_reason(self.store, run) or (self.owner_check() if self.owner_check else None)
                if reason:
                    self._move(run, Event.PAUSE, reason=reason)
                    raise RunPaused(f"run {run.id} paused before {run.state}: {reason}")
                if run.state == State.CREATED:
                    run = self._move(run, Event.ADVANCE)
                    continue
                run = self._execute(run)
            return run
        except RunAbandoned:
            abandoned = True
            raise
        finally:
            self._stop_flushing.set()
            flusher.join()
            self.writer.flush()
            metrics.record_dropped_spans(self.writer.dropped_spans)
            self.bus.close()
            if not abandoned:  # an abandoned run was released by whoever stopped it (or is a crash test's)
                self.store.release(self.run_id)

    def _move(self, run: RunRecord, event: Event, reason: str | None = None, error: str | None = None,
              state_span: tuple[str, int] | None = None) -> RunRecord:
        snapshot = fire(Snapshot(State(run.state), _state_or_none(run.return_to)), event, enabled=self.enabled)
        moved = self.store.transition(
            run.id, expected_version=run.version, to_state=snapshot.state, return_to=snapshot.return_to,
            event=event.value, reason=reason, error=error, terminal=is_terminal(snapshot.state),
        )
        self._after_transition(run, moved, reason, state_span)
        return moved

    def _after_transition(self, before: RunRecord, after: RunRecord, reason: str | None,
                          state_span: tuple[str, int] | None = None) -> None:
        """Trace and announce a transition; ``state_span`` (id, start) closes the span of the state left."""
        status, error = ("error", after.error) if after.state == State.FAILED else ("ok", None)
        if state_span:
            step = STATES[State(before.state)].step
            lead = self.roles.lead(base_step(step)) if step else None
            span = spans.state_span(after.id, span_id=state_span[0], from_state=before.state, to_state=after.state,
                                    agent=(lead.name, lead.version) if lead else None,
                                    start_ns=state_span[1], end_ns=time.time_ns(), reason=reason,
                                    tenant_id=after.tenant_id, status=status, error=error)
        else:
            span = spans.transition_span(after.id, from_state=before.state, to_state=after.state, reason=reason,
                                         tenant_id=after.tenant_id, status=status, error=error)
        self.writer.add(span)
        self.emit(hooks.RUN_STATE_CHANGED, after, from_state=before.state, to_state=after.state, reason=reason)
        if after.state == State.PAUSED:
            self.emit(hooks.RUN_PAUSED, after, reason=reason)
        elif after.state == State.FAILED:
            self.emit(hooks.RUN_FAILED, after, error=after.error)
        elif after.state == State.COMPLETED:
            self.emit(hooks.RUN_FINISHED, after, state=after.state)
        if is_terminal(State(after.state)):
            self._root_span(after)
        self.transitions_made += 1
        metrics.record_transition(before.state, after.state)
        if is_terminal(State(after.state)):
            metrics.record_run_finished(after.state)
        if is_terminal(State(after.state)):
            self.writer.flush()
        faults.point("engine.transition", self.transitions_made, before=self.writer.flush)

    def _decided(self, waited: RunRecord, run: RunRecord, event: Event) -> None:
        """Trace a human's decision: the resume or approval of a run that waited, since when, and why."""
        entered = next((t for t in reversed(self.store.transitions(run.id)) if t.to_state == waited.state), None)
        self.writer.add(spans.decision_span(
            run.id, decision=event.value.lower(), from_state=waited.state, to_state=run.state,
            waiting_since_ns=_iso_to_ns(entered.at) if entered else time.time_ns(),
            waited_for=entered.reason if entered else None, by=os.environ.get("USER", "unknown"),
            tenant_id=run.tenant_id))

    def _root_span(self, run: RunRecord) -> None:
        self.writer.add(spans.run_span(
            run.id, start_ns=_iso_to_ns(run.created_at), end_ns=time.time_ns(), state=run.state, model=run.model,
            request_chars=len(run.request), tenant_id=run.tenant_id,
            error=None if run.state == State.COMPLETED else run.error or run.state))

    def _execute(self, run: RunRecord) -> RunRecord:
        state = State(run.state)
        step_name = self._step_name(state)
        lead = self.roles.lead(base_step(step_name))
        if lead is None:
            raise UsageError(
                f"{state} is enabled by feature flags {', '.join(STATES[state].agent_flags)}, but no active role "
                f"leads its step {base_step(step_name)!r}; disable the flag (`aigentflow config set flags.<name> "
                "false`) or pick a role version that leads it (`aigentflow agents list`)."
            )
        role = lead.name
        quota = self._quota_gate(run)
        step = self.store.begin_step(run.id, step_name, role, state)
        state_span = (new_span_id(), time.time_ns())
        budget = run.config.model.max_calls_per_run - run.model_calls
        call = AgentCall(
            run_id=run.id, step=step_name, attempt=step.attempt, request=run.request,
            project_context=self.inputs.project_context(), layers=self.inputs.layers(), model=self.options.model_spec,
            inputs=self.inputs.for_step(step_name), parent_span_id=state_span[0], budget=max(budget, 0),
            tenant_id=run.tenant_id, timeout_s=run.config.run.step_timeout_s, quota=quota,
        )
        self.emit(hooks.AGENT_STARTED, run, role=role, step=step_name, attempt=step.attempt)
        invoked = time.perf_counter()
        try:
            result = self.invoke(role, call)
        except Exception as exc:  # noqa: BLE001 - a crashed agent (after Ray's restarts and retries) fails the step, recorded
            result = AgentResult(role=role, output={}, error=f"the {role} agent crashed: {type(exc).__name__}: "
                                 f"{str(exc)[:2000]}", error_kind="crash")
        if self.owner_check:  # stopped at once while the step ran: nothing of it is recorded
            self.owner_check()
        if result.error_kind != "paused" and not self.roles.workflow(base_step(step_name), run.flags):
            self._shadow(run, role, call, result, time.perf_counter() - invoked)
        for played in self.shadows.drain():  # a workflow step's shadows (its build tasks'), played inside it
            self._shadow_played(run, played["role"], played["record"], played["spans"])
        outcome = "paused" if result.error_kind == "paused" else "ok" if result.ok else "failed"
        metrics.record_agent_call(role, outcome, time.perf_counter() - invoked)
        metrics.record_step(step_name, (time.time_ns() - state_span[1]) / 1e9)
        self.writer.extend(result.spans)
        calls_made = result.model_calls
        if calls_made:
            self.store.add_model_calls(run.id, calls_made)
        for entry in result.calls:
            self.emit(hooks.MODEL_CALLED, run, role=role, step=step_name, attempt=entry["attempt"],
                      prompt_hash=entry["prompt_hash"], usage=entry["usage"])
        for warning in result.warnings:
            self.emit(hooks.AGENT_FINISHED, run, role=role, step=step_name, warning=warning)
        self._record_cassette(result)
        usage = StepUsage(result.input_tokens, result.output_tokens, result.cost_usd, calls_made, result.prompt_hashes,
                          [ModelUsage(model, row.get("provider", ""), int(row.get("calls", 0)),
                                      int(row.get("input_tokens", 0)), int(row.get("output_tokens", 0)),
                                      float(row.get("cost_usd", 0.0))) for model, row in result.by_model.items()])
        if result.error_kind == "paused":
            self.store.fail_step(step, result.error or "paused", usage)
            self._quota_gate(run, pause=False)  # a call refused by the tenant's quota: audited, its incident recorded
            self._move(self.store.get_run(run.id), Event.PAUSE, reason=result.error, state_span=state_span)
            raise RunPaused(f"run {run.id} paused during {state}: {result.error}")
        if result.error_kind == NEEDS_APPROVAL:
            return self._await_approval(run, step, role, result, usage, state_span)
        if result.error_kind == TESTS_FAILED:  # a finished step whose verdict is "fix it": its output is kept
            return self._commit(self.store.get_run(run.id), step, role, result, usage, state_span,
                                event=Event.TESTS_FAILED)
        if not result.ok:
            self.store.fail_step(step, result.error or "failed", usage)
            failed = self._move(self.store.get_run(run.id), Event.FAIL, reason=f"{role} failed", error=result.error,
                                state_span=state_span)
            self.emit(hooks.AGENT_FINISHED, failed, role=role, step=step_name, status="failed", error=result.error)
            raise RunFailure(f"run {run.id} failed in {state}: {result.error}")
        return self._commit(self.store.get_run(run.id), step, role, result, usage, state_span)

    def _quota_gate(self, run: RunRecord, pause: bool = True) -> Any:
        """The tenant's ``Allowance`` for the next step; an exhausted quota is a refusal and, before a step
        (``pause``), pauses the run: resumable once the quota resets or is raised (``aigentflow.tenants``)."""
        from aigentflow.tenants.quotas import step_allowance

        quota, refused = step_allowance(self.store, self.paths.root, run.tenant_id, run.id, before_step=pause)
        if refused and pause:
            self._move(run, Event.PAUSE, reason=refused)
            raise RunPaused(f"run {run.id} paused before {run.state}: {refused}")
        return quota

    def _shadow(self, run: RunRecord, role: str, call: AgentCall, result: AgentResult, seconds: float) -> None:
        """The candidate that shadows ``role`` plays this step too (``aigentflow.run.shadow``); the run's result
        stays the incumbent's. A workflow step's shadow is played inside the workflow, on a scratch worktree."""
        played = self.shadows.play(role, call, self.invoke, result, seconds, run.tenant_id)
        if played is not None:
            self._shadow_played(run, role, played["record"], played["spans"])

    def _shadow_played(self, run: RunRecord, role: str, record: dict[str, Any], shadow_spans: list[Any]) -> None:
        """A played shadow's spans and its ``shadow.played`` audit entry (its record is already written)."""
        self.writer.extend(shadow_spans)
        self.store.append_audit(SHADOW_AUDIT, run.id, {
            "role": role, "step": record["step"], "candidate": record["candidate"]["version"],
            "grades": {"incumbent": record["incumbent"]["grade"], "candidate": record["candidate"]["grade"]},
            **({"tests_passed": {"incumbent": record["incumbent"]["tests_passed"],
                                 "candidate": record["candidate"]["tests_passed"]}}
               if "tests_passed" in record["candidate"] else {})},
            tenant_id=run.tenant_id)

    def _await_approval(self, run: RunRecord, step: Any, role: str, result: AgentResult, usage: StepUsage,
                        state_span: tuple[str, int]) -> RunRecord:
        """A step that needs a human: its evidence is written, the run waits in AWAITING_APPROVAL.

        `aigentflow resume` (APPROVE) runs the step again; what it finished stays done (git remembers)."""
        run_dir = self.paths.run_dir(run.id)
        written = [write_artifact(run_dir, run.id, step.step, name, self.redactor.redact_text(content))
                   for name, content in sorted(result.files.items())]
        reason = self.redactor.redact_text(result.error or "a human must decide")
        evidence = ", ".join(a.path for a in written)
        self.store.fail_step(step, f"{reason} (evidence: {evidence})" if evidence else reason, usage)
        self.emit(hooks.AGENT_FINISHED, run, role=role, step=step.step, status="needs_approval", error=reason,
                  evidence=[a.name for a in written])
        return self._move(self.store.get_run(run.id), Event.AWAIT_APPROVAL, reason=reason, state_span=state_span)

    def _step_name(self, state: State) -> str:
        """The step's name: the state's step, with its round for states a run passes through again."""
        name = STATES[state].step
        if state not in ROUND_STATES:
            return name
        fixes = sum(1 for s in self.store.steps(self.run_id) if base_step(s.step) == "fix" and s.status == "completed")
        return name if fixes == 0 else f"{name}.{fixes + 1}"

    def _commit(self, run: RunRecord, step: Any, role: str, result: AgentResult, usage: StepUsage,
                state_span: tuple[str, int], event: Event = Event.ADVANCE) -> RunRecord:
        run_dir = self.paths.run_dir(run.id)
        output = self.redactor.redact({**result.output, **({"skills": result.skills} if result.skills else {}),
                                       **({"tool_calls": result.tool_calls} if result.tool_calls else {})})
        artifacts = [
            write_artifact(run_dir, run.id, step.step, name, self.redactor.redact_text(content))
            for name, content in sorted(result.files.items())
        ]
        target = fire(Snapshot(State(run.state)), event, enabled=self.enabled)
        if is_terminal(target.state):
            steps = [s for s in self.store.steps(run.id) if s.key != step.key]
            finished = [*steps, _completed(step, usage)]
            names = [a.name for a in self.store.artifacts(run.id)] + [a.name for a in artifacts] + ["summary.md"]
            summary = render_summary(run, self.store.transitions(run.id), finished, sorted(set(names)), target.state)
            artifacts.append(write_artifact(run_dir, run.id, step.step, "summary.md", summary))
        faults.point("engine.step", step.step, before=self.writer.flush)
        moved = self.store.complete_step(
            step, output=output, usage=usage, artifacts=artifacts, expected_version=run.version,
            to_state=target.state, return_to=None, event=event.value, terminal=is_terminal(target.state),
        )
        self.emit(hooks.AGENT_FINISHED, moved, role=role, step=step.step, status="completed",
                  input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, cost_usd=usage.cost_usd)
        self._after_transition(run, moved, None, state_span)
        return moved

    # -- what agents get --------------------------------------------------------------------------

    def _record_cassette(self, result: AgentResult) -> None:
        if not self.options.record_path or not result.calls:
            return
        from pathlib import Path

        from aigentflow.models.cassette import append_entries

        entries = [self.redactor.redact(entry) for entry in result.calls]
        append_entries(Path(self.options.record_path), entries, model=self.options.model_spec.name)


def _state_or_none(value: str | None) -> State | None:
    return State(value) if value else None


def _completed(step: Any, usage: StepUsage) -> Any:
    from dataclasses import replace

    return replace(step, status="completed", input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                   cost_usd=usage.cost_usd, model_calls=usage.model_calls)


def _iso_to_ns(stamp: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(stamp).timestamp() * 1e9)
