"""The run state machine, defined once as data: states, events, and the transitions between them.

Pure: no I/O. A run's position is a ``Snapshot``; ``fire`` returns the next snapshot or raises
``IllegalTransition`` and changes nothing. Which working states take part in a run depends on the
feature flags (``enabled_states``); disabled states are skipped by ADVANCE, never entered.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from aigentflow.exceptions import IllegalTransition, UsageError


class State(StrEnum):
    """Where a run is."""

    CREATED = "CREATED"
    ANALYZING = "ANALYZING"
    PLANNING = "PLANNING"
    ARCHITECTING = "ARCHITECTING"
    DESIGNING = "DESIGNING"
    BUILDING = "BUILDING"
    TESTING = "TESTING"
    FIXING = "FIXING"
    REVIEWING = "REVIEWING"
    MERGING = "MERGING"
    COMPLETED = "COMPLETED"
    PAUSED = "PAUSED"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class Kind(StrEnum):
    """What sort of state it is: how a run in it behaves."""

    INITIAL = "INITIAL"
    WORKING = "WORKING"
    WAITING = "WAITING"
    PAUSED = "PAUSED"
    TERMINAL = "TERMINAL"


class Event(StrEnum):
    """Something that happens to a run and may move it to another state."""

    ADVANCE = "ADVANCE"
    TESTS_FAILED = "TESTS_FAILED"
    CHANGES_REQUESTED = "CHANGES_REQUESTED"
    PAUSE = "PAUSE"
    RESUME = "RESUME"
    AWAIT_APPROVAL = "AWAIT_APPROVAL"
    APPROVE = "APPROVE"
    FAIL = "FAIL"
    CANCEL = "CANCEL"


@dataclass(frozen=True)
class StateSpec:
    """What a state is: its kind, the agents doing its work, and the step name persisted for it."""

    kind: Kind
    agent_flags: tuple[str, ...]
    step: str | None
    description: str


def _working(flags: tuple[str, ...], step: str, description: str) -> StateSpec:
    return StateSpec(Kind.WORKING, flags, step, description)


STATES: dict[State, StateSpec] = {
    State.CREATED: StateSpec(Kind.INITIAL, (), None, "The run exists; no step has started."),
    State.ANALYZING: _working(
        ("agents.analyst",), "analyze", "The analyst turns the request into requirements."
    ),
    State.PLANNING: _working(
        ("agents.projectManager",), "plan", "The project manager splits the work into tasks."
    ),
    State.ARCHITECTING: _working(
        ("agents.architect",), "architect", "The architect designs the technical solution."
    ),
    State.DESIGNING: _working(
        ("agents.uiDesigner",), "design", "The UI designer designs the user interface."
    ),
    State.BUILDING: _working(
        ("agents.frontendDev", "agents.backendDev"), "build", "The developers write the code."
    ),
    State.TESTING: _working(("agents.tester",), "test", "The tester writes and runs the tests."),
    State.FIXING: _working(("agents.bugFixer",), "fix", "The bug fixer repairs what the tests found."),
    State.REVIEWING: _working(("agents.reviewer",), "review", "The reviewer reviews the changes."),
    State.MERGING: _working(("agents.gitAgent",), "merge", "The git agent merges the work."),
    State.COMPLETED: StateSpec(Kind.TERMINAL, (), None, "The run finished successfully."),
    State.PAUSED: StateSpec(Kind.PAUSED, (), None, "Stopped on request; RESUME goes back where it was."),
    State.AWAITING_APPROVAL: StateSpec(
        Kind.WAITING, (), None, "Waiting for a human to APPROVE before going on."
    ),
    State.FAILED: StateSpec(Kind.TERMINAL, (), None, "The run failed and was given up."),
    State.CANCELLED: StateSpec(Kind.TERMINAL, (), None, "The run was cancelled."),
}

PIPELINE: tuple[State, ...] = (
    State.ANALYZING,
    State.PLANNING,
    State.ARCHITECTING,
    State.DESIGNING,
    State.BUILDING,
    State.TESTING,
    State.REVIEWING,
    State.MERGING,
)

ROUND_STATES = frozenset({State.TESTING, State.FIXING})
"""States a run may pass through more than once (TESTING -> FIXING -> TESTING ...): each pass is a step
of its own (``test``, ``fix``, then ``test.2``, ``fix.2``, ...), since a completed step is never redone."""


def base_step(step: str) -> str:
    """``test.2`` -> ``test``: the step's kind, whatever its round."""
    return step.split(".", 1)[0]


def round_of(step: str) -> int:
    """``test`` -> 1, ``test.2`` -> 2."""
    return int(step.split(".", 1)[1]) if "." in step else 1


WORKING_STATES = frozenset(state for state, spec in STATES.items() if spec.kind is Kind.WORKING)
TERMINAL_STATES = frozenset(state for state, spec in STATES.items() if spec.kind is Kind.TERMINAL)
# States that remember where the run was, and the states each may remember.
_RETURN_TO_ALLOWED: dict[State, frozenset[State]] = {
    State.PAUSED: WORKING_STATES | {State.CREATED},
    State.AWAITING_APPROVAL: WORKING_STATES,
}


def _as_state(value: object, what: str) -> State:
    try:
        return State(value)
    except ValueError:
        raise UsageError(f"unknown {what} {value!r}: use one of {', '.join(State)}") from None


@dataclass(frozen=True)
class Snapshot:
    """A run's position: its state and, when PAUSED or AWAITING_APPROVAL, the state it goes back to."""

    state: State
    return_to: State | None = None

    def __post_init__(self) -> None:
        state = _as_state(self.state, "state")
        return_to = None if self.return_to is None else _as_state(self.return_to, "return_to")
        object.__setattr__(self, "state", state)
        object.__setattr__(self, "return_to", return_to)
        allowed = _RETURN_TO_ALLOWED.get(state)
        if allowed is None and return_to is not None:
            raise UsageError(f"a {state} run has no return_to, got {return_to}: only PAUSED and "
                             "AWAITING_APPROVAL runs remember a state")
        if allowed is not None and return_to not in allowed:
            raise UsageError(f"a {state} run needs a return_to among {', '.join(sorted(allowed))}, "
                             f"got {return_to}")


def is_terminal(state: State) -> bool:
    """True for COMPLETED, FAILED and CANCELLED: nothing happens to such a run any more."""
    return state in TERMINAL_STATES


def enabled_states(flags: Mapping[str, object]) -> frozenset[State]:
    """The WORKING states with at least one truthy agent flag (a missing flag counts as off)."""
    return frozenset(
        state for state in WORKING_STATES if any(flags.get(flag) for flag in STATES[state].agent_flags)
    )


def _pipeline_index(state: State) -> int:
    """Position in PIPELINE; CREATED comes before it all (-1)."""
    return -1 if state is State.CREATED else PIPELINE.index(state)


def next_state(snapshot: Snapshot, enabled: frozenset[State]) -> State:
    """Where ADVANCE goes: the next enabled pipeline state (else COMPLETED); from FIXING, TESTING."""
    if snapshot.state is State.FIXING:
        return State.TESTING
    if snapshot.state is not State.CREATED and snapshot.state not in PIPELINE:
        raise IllegalTransition(snapshot.state, Event.ADVANCE,
                                f"{snapshot.state} is not CREATED, FIXING or a pipeline state")
    later = PIPELINE[_pipeline_index(snapshot.state) + 1:]
    return next((state for state in later if state in enabled), State.COMPLETED)


# Target rules: where an event goes by default, given the snapshot and the enabled states.
TargetRule = Callable[[Snapshot, frozenset[State]], State]
# Guards: the reason a transition from source to target is refused, or None to allow it.
Guard = Callable[[State, State, frozenset[State]], str | None]


def _to(state: State) -> TargetRule:
    return lambda snapshot, enabled: state


def _remembered_state(snapshot: Snapshot, enabled: frozenset[State]) -> State:
    assert snapshot.return_to is not None, "Snapshot guarantees return_to for PAUSED/AWAITING_APPROVAL"
    return snapshot.return_to


def _skips_no_enabled_state(source: State, target: State, enabled: frozenset[State]) -> str | None:
    """From FIXING only to TESTING; else to a later enabled pipeline state or COMPLETED, skipping no
    enabled state."""
    if source is State.FIXING:
        return None if target is State.TESTING else f"FIXING can only ADVANCE to TESTING, not {target}"
    start = _pipeline_index(source) + 1
    if target is State.COMPLETED:
        end = len(PIPELINE)
    elif target in PIPELINE and _pipeline_index(target) >= start:
        if target not in enabled:
            return f"{target} is disabled ({_flags_text(target)} off)"
        end = _pipeline_index(target)
    else:
        return f"{target} is not a pipeline state after {source} nor COMPLETED"
    skipped = [state for state in PIPELINE[start:end] if state in enabled]
    if skipped:
        return f"{skipped[0]} is enabled and would be skipped"
    return None


def _target_enabled(source: State, target: State, enabled: frozenset[State]) -> str | None:
    """The target state's agents are enabled."""
    return None if target in enabled else f"{target} is disabled ({_flags_text(target)} off)"


def _flags_text(state: State) -> str:
    flags = STATES[state].agent_flags
    return f"{flags[0]} is" if len(flags) == 1 else f"{' and '.join(flags)} are"


@dataclass(frozen=True)
class TransitionSpec:
    """One event's rule: from which states, to where, and under which guard."""

    event: Event
    sources: frozenset[State]
    description: str
    target: TargetRule
    target_text: str
    guard: Guard | None = None
    remembers_source: bool = False
    accepts_other_target: bool = False


_NON_TERMINAL = frozenset(State) - TERMINAL_STATES

TRANSITIONS: tuple[TransitionSpec, ...] = (
    TransitionSpec(
        Event.ADVANCE, frozenset({State.CREATED, State.FIXING, *PIPELINE}),
        "The current step is done: go to the next enabled step, or finish.",
        target=next_state, target_text="next enabled pipeline state, else COMPLETED; TESTING from FIXING",
        guard=_skips_no_enabled_state, accepts_other_target=True,
    ),
    TransitionSpec(
        Event.TESTS_FAILED, frozenset({State.TESTING}), "Tests failed: fix the code, then test again.",
        target=_to(State.FIXING), target_text=State.FIXING, guard=_target_enabled,
    ),
    TransitionSpec(
        Event.CHANGES_REQUESTED, frozenset({State.REVIEWING}), "The reviewer asked for changes: build again.",
        target=_to(State.BUILDING), target_text=State.BUILDING, guard=_target_enabled,
    ),
    TransitionSpec(
        Event.PAUSE, WORKING_STATES | {State.CREATED}, "Stop at the step boundary; RESUME goes back.",
        target=_to(State.PAUSED), target_text=State.PAUSED, remembers_source=True,
    ),
    TransitionSpec(
        Event.RESUME, frozenset({State.PAUSED}), "Go back to the state the run was paused in.",
        target=_remembered_state, target_text="the state before PAUSE",
    ),
    TransitionSpec(
        Event.AWAIT_APPROVAL, WORKING_STATES, "Wait for a human to approve before going on.",
        target=_to(State.AWAITING_APPROVAL), target_text=State.AWAITING_APPROVAL, remembers_source=True,
    ),
    TransitionSpec(
        Event.APPROVE, frozenset({State.AWAITING_APPROVAL}), "A human approved: go back to work.",
        target=_remembered_state, target_text="the state before AWAIT_APPROVAL",
    ),
    TransitionSpec(
        Event.FAIL, WORKING_STATES | {State.CREATED, State.AWAITING_APPROVAL}, "Give the run up as failed.",
        target=_to(State.FAILED), target_text=State.FAILED,
    ),
    TransitionSpec(
        Event.CANCEL, _NON_TERMINAL, "Cancel the run.",
        target=_to(State.CANCELLED), target_text=State.CANCELLED,
    ),
)

_BY_EVENT: dict[Event, TransitionSpec] = {spec.event: spec for spec in TRANSITIONS}
assert set(_BY_EVENT) == set(Event), "every event needs exactly one TransitionSpec"


def allowed_events(state: State) -> list[Event]:
    """The events that may be fired from a state (guards aside), in Event order."""
    return [spec.event for spec in TRANSITIONS if state in spec.sources]


def _join_or(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def fire(
    snapshot: Snapshot, event: Event, *, enabled: frozenset[State], target: State | None = None
) -> Snapshot:
    """The snapshot after ``event``; raises IllegalTransition (naming state, event and why) if not allowed."""
    state = snapshot.state
    try:
        event = Event(event)
    except ValueError:
        raise IllegalTransition(state, str(event), f"unknown event; use one of {', '.join(Event)}") from None
    if target is not None:
        try:
            target = State(target)
        except ValueError:
            raise IllegalTransition(state, event, f"unknown target state {target!r}") from None
    if is_terminal(state):
        raise IllegalTransition(state, event, f"{state} is terminal: nothing can happen to the run any more")
    spec = _BY_EVENT[event]
    if state not in spec.sources:
        raise IllegalTransition(state, event, f"{state} can only {_join_or(allowed_events(state))}")
    computed = spec.target(snapshot, enabled)
    if target is not None and target != computed and not spec.accepts_other_target:
        raise IllegalTransition(state, event, f"{event} from {state} goes to {computed}, not {target}")
    chosen = computed if target is None else target
    if spec.guard is not None and (reason := spec.guard(state, chosen, enabled)) is not None:
        raise IllegalTransition(state, event, reason)
    return Snapshot(chosen, return_to=state if spec.remembers_source else None)


def describe() -> list[dict]:
    """The transition table as plain data (for docs and ``--json``)."""
    return [
        {
            "event": str(spec.event),
            "sources": [str(state) for state in State if state in spec.sources],
            "target": str(spec.target_text),
            "guard": " ".join((spec.guard.__doc__ or spec.guard.__name__).split()) if spec.guard else None,
            "remembers_source": spec.remembers_source,
            "description": spec.description,
        }
        for spec in TRANSITIONS
    ]
