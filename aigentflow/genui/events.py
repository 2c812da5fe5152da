"""The events `aigentflow run --json` and `demo --json` print, one JSON object a line, as schemas.

Every event has ``type`` (which event: a stable name, see README.md), ``v`` (the events' schema
version, ``aigentflow.run.progress.EVENTS_VERSION``), ``run_id`` and ``at`` (UTC, ISO 8601). ``RunEvent``
is their union, told apart by ``type``: a consumer parses a line with ``parse_event``. The events are
built as dicts by ``aigentflow.run.progress`` (the driver reads them from the store); these models are
their published contract, checked against a real run's lines by tests/test_genui_run.py.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from aigentflow.genui.results import RunState


class EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = Field(description="The events' schema version.")
    run_id: str
    at: str = Field(description="When it happened (UTC, ISO 8601).")


class RunStarted(EventBase):
    """The run was recorded (the first event of a run's lines)."""

    type: Literal["run.started"]
    request: str
    model: str
    state: RunState
    tenant_id: str


class StateChanged(EventBase):
    """The run moved from one state to another (``event``: the state machine's event)."""

    type: Literal["run.state_changed"]
    from_state: RunState | None
    to_state: RunState
    event: str
    reason: str | None
    seq: int = Field(description="The transition's number in the run's history.")


class StepStarted(EventBase):
    """An agent (or a workflow of agents) started a step."""

    type: Literal["step.started"]
    step: str
    role: str
    attempt: int
    state: RunState


class StepFinished(EventBase):
    """A step ended: completed (its result is recorded) or failed."""

    type: Literal["step.finished"]
    step: str
    role: str
    attempt: int
    status: Literal["completed", "failed"]
    input_tokens: int
    output_tokens: int
    cost_usd: float
    model_calls: int
    error: str | None


class TaskProgress(EventBase):
    """A build task (BUILDING) reached a phase: ``done`` of its ``total`` planned phases are behind it."""

    type: Literal["task.progress"]
    task: str = Field(description="The work breakdown's task id (T1, T2, ...).")
    title: str
    phase: str = Field(description="waiting, tests, implement, fix, review, rework, merge, merged, stopped.")
    done: int
    total: int
    status: str = Field(description="pending, running, merged, or how the task stopped (failed, blocked, ...).")


class RunWarning(EventBase):
    """Something the user should know that does not stop the run (a prompt drift, a hook that failed)."""

    type: Literal["run.warning"]
    message: str


class RunResult(EventBase):
    """How the run stopped: the last event of a run's lines; the command exits with ``exit_code``."""

    type: Literal["run.result"]
    state: RunState
    exit_code: int
    error: str | None
    outputs: str = Field(description="The run's output directory (.aigentflow/runs/<run_id>).")
    lenient: bool = Field(description="The run replayed a cassette marked lenient.")


RunEvent = Annotated[RunStarted | StateChanged | StepStarted | StepFinished | TaskProgress | RunWarning | RunResult,
                     Field(discriminator="type")]
EVENT_MODELS: tuple[type[EventBase], ...] = (RunStarted, StateChanged, StepStarted, StepFinished, TaskProgress,
                                             RunWarning, RunResult)
EVENTS: TypeAdapter[Any] = TypeAdapter(RunEvent)


def parse_event(line: str) -> EventBase:
    """One line of `run --json` as its event model (pydantic's ValidationError if it is not one)."""
    return EVENTS.validate_json(line)
