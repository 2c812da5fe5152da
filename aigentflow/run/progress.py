"""A run's progress as it happens, read from the store (never Ray): events, and the plain lines of them.

``ProgressWatcher.poll`` reads what changed in the store since its last poll and hands on each change
as an event (a JSON-ready dict with a stable ``type``; their schemas are published by
``aigentflow.genui.events``, documented in ``aigentflow/genui/README.md``) and, for a plain console,
as the lines `aigentflow run` has always printed. The driver polls it while the run's host drives the
run; the build workflow's per-task progress arrives as ``task.progress`` audit entries
(``TASK_PROGRESS``), written by the run's Orchestrator.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aigentflow.project.paths import ProjectPaths
from aigentflow.store.rows import now_iso
from aigentflow.store.sqlite import SQLiteRunStore

EVENTS_VERSION = 1
"""The ``v`` of every event: raised when an event's fields change incompatibly (new fields are not)."""
RUN_STARTED = "run.started"
STATE_CHANGED = "run.state_changed"
STEP_STARTED = "step.started"
STEP_FINISHED = "step.finished"
TASK_PROGRESS = "task.progress"
"""Also the audit event the build workflow writes for each phase a task reaches."""
WARNING = "run.warning"
RUN_RESULT = "run.result"
EVENT_TYPES = (RUN_STARTED, STATE_CHANGED, STEP_STARTED, STEP_FINISHED, TASK_PROGRESS, WARNING, RUN_RESULT)

Event = dict[str, Any]


def event(kind: str, run_id: str, at: str | None = None, **fields: Any) -> Event:
    """One event: its type, the schema version, the run, when (UTC, ISO 8601), its own fields."""
    return {"type": kind, "v": EVENTS_VERSION, "run_id": run_id, "at": at or now_iso(), **fields}


def plain_line(item: Event) -> str | None:
    """The line a plain console prints for an event (None: nothing, e.g. a step that only started)."""
    kind = item["type"]
    if kind == STEP_FINISHED:
        return (f"  {item['role']} {item['status']} {item['step']}: {item['input_tokens']} tokens in, "
                f"{item['output_tokens']} out, ${item['cost_usd']:.4f}")
    if kind == WARNING:
        return f"  warning: {item['message']}"
    if kind == STATE_CHANGED:
        note = f" ({item['reason']})" if item["reason"] else ""
        return f"{item['from_state'] or '-'} -> {item['to_state']}{note}"
    return None


class ProgressWatcher:
    """Reads the store and reports each new transition, step, task phase and warning: as lines to
    ``show``, the new state to ``on_state``, every event to ``on_event``."""

    def __init__(self, paths: ProjectPaths, run_id: str, show: Callable[[str], None] | None,
                 on_state: Callable[[str], None] | None = None,
                 on_event: Callable[[Event], None] | None = None, *, lines: bool = True) -> None:
        """``lines`` False: ``show`` gets only messages (``say``), not a line per event (a live display
        draws the events itself)."""
        self.paths = paths
        self.lines = lines
        self.run_id = run_id
        self.show = show
        self.on_state = on_state
        self.on_event = on_event
        self.seen_seq = 0
        self.seen_audit = 0
        self.seen_steps: set[tuple[str, int]] = set()
        self.started_steps: set[tuple[str, int]] = set()
        self.announced = False

    def say(self, message: str) -> None:
        if self.show:
            self.show(message)

    def poll(self) -> None:
        if not self.show and not self.on_event:
            return
        store = SQLiteRunStore(self.paths.database, readonly=True)
        try:
            with store.snapshot():  # a step's end and its transition are one commit: seen in the same poll
                steps, warnings, moves = self._new_events(store)
        finally:
            store.close()
        for item in [*steps, *warnings, *moves]:  # lines in the order they always came: steps, warnings, moves
            line = plain_line(item) if self.lines else None
            if line is not None:
                self.say(line)
            if item["type"] == STATE_CHANGED and self.on_state:
                self.on_state(item["to_state"])
        if self.on_event:
            for item in sorted([*steps, *warnings, *moves], key=lambda e: e["at"]):  # stable: ties keep that order
                self.on_event(item)

    def _new_events(self, store: SQLiteRunStore) -> tuple[list[Event], list[Event], list[Event]]:
        run_id = self.run_id
        steps: list[Event] = []
        if not self.announced and self.on_event:
            run = store.get_run(run_id)
            self.announced = True
            steps.append(event(RUN_STARTED, run_id, run.created_at, request=run.request, model=run.model,
                               state=run.state, tenant_id=run.tenant_id))
        for step in store.steps(run_id):
            key = (step.step, step.attempt)
            if key not in self.started_steps:
                self.started_steps.add(key)
                steps.append(event(STEP_STARTED, run_id, step.started_at, step=step.step, role=step.role,
                                   attempt=step.attempt, state=step.state))
            if step.status != "started" and key not in self.seen_steps:
                self.seen_steps.add(key)
                steps.append(event(STEP_FINISHED, run_id, step.finished_at or step.started_at, step=step.step,
                                   role=step.role, attempt=step.attempt, status=step.status,
                                   input_tokens=step.input_tokens, output_tokens=step.output_tokens,
                                   cost_usd=step.cost_usd, model_calls=step.model_calls, error=step.error))
        warnings: list[Event] = []
        for entry in store.audit(run_id):
            if entry.seq <= self.seen_audit:
                continue
            self.seen_audit = entry.seq
            if entry.data.get("warning"):
                warnings.append(event(WARNING, run_id, entry.at, message=str(entry.data["warning"])))
            elif entry.event == "hook.failed":
                warnings.append(event(WARNING, run_id, entry.at, message=f"hook {entry.data.get('hook')} failed: "
                                                                         f"{entry.data.get('message')}"))
            elif entry.event == TASK_PROGRESS:
                data = entry.data
                warnings.append(event(TASK_PROGRESS, run_id, entry.at, task=str(data.get("task", "")),
                                      title=str(data.get("title", "")), phase=str(data.get("phase", "")),
                                      done=int(data.get("done", 0)), total=int(data.get("total", 0)),
                                      status=str(data.get("status", "running"))))
        moves: list[Event] = []
        for transition in store.transitions(run_id):
            if transition.seq > self.seen_seq:
                self.seen_seq = transition.seq
                moves.append(event(STATE_CHANGED, run_id, transition.at, from_state=transition.from_state,
                                   to_state=transition.to_state, event=transition.event, reason=transition.reason,
                                   seq=transition.seq))
        return steps, warnings, moves
