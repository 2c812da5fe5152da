"""The run state machine: every rule and guard, the MVP flag set, and a stateful hypothesis test."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from aigentflow.exceptions import IllegalTransition, UsageError
from aigentflow.run.statemachine import (
    PIPELINE,
    STATES,
    TRANSITIONS,
    Event,
    Kind,
    Snapshot,
    State,
    allowed_events,
    describe,
    enabled_states,
    fire,
    is_terminal,
    next_state,
)

ALL_FLAGS = sorted({flag for spec in STATES.values() for flag in spec.agent_flags})
MVP_ON = {"agents.analyst", "agents.projectManager", "agents.architect"}
MVP_FLAGS = {flag: flag in MVP_ON for flag in ALL_FLAGS}
WORKING = frozenset(state for state, spec in STATES.items() if spec.kind is Kind.WORKING)
ALL_ENABLED = WORKING
TERMINAL = (State.COMPLETED, State.FAILED, State.CANCELLED)
REMEMBERING = (State.PAUSED, State.AWAITING_APPROVAL)


def at(state: State) -> Snapshot:
    """A snapshot in ``state``; PAUSED/AWAITING_APPROVAL remember ANALYZING."""
    return Snapshot(state, State.ANALYZING if state in REMEMBERING else None)


def assert_illegal(snapshot: Snapshot, event: Event, reason_part: str, **kwargs: object) -> None:
    before = Snapshot(snapshot.state, snapshot.return_to)
    with pytest.raises(IllegalTransition) as caught:
        fire(snapshot, event, **{"enabled": ALL_ENABLED, **kwargs})
    message = str(caught.value)
    assert snapshot.state in message and event in message
    assert (caught.value.state, caught.value.event) == (snapshot.state, event)
    assert reason_part in caught.value.reason
    assert snapshot == before


# --- the data -----------------------------------------------------------------------------------


def test_every_state_has_a_spec_and_values_are_the_names() -> None:
    assert set(STATES) == set(State)
    assert all(state.value == state.name for state in State)
    assert State.ANALYZING == "ANALYZING"
    assert {spec.kind for spec in STATES.values()} == set(Kind)


def test_steps_and_agent_flags() -> None:
    steps = {state: spec.step for state, spec in STATES.items() if spec.step is not None}
    assert steps == {
        State.ANALYZING: "analyze", State.PLANNING: "plan", State.ARCHITECTING: "architect",
        State.DESIGNING: "design", State.BUILDING: "build", State.TESTING: "test", State.FIXING: "fix",
        State.REVIEWING: "review", State.MERGING: "merge",
    }
    assert STATES[State.BUILDING].agent_flags == ("agents.frontendDev", "agents.backendDev")
    assert STATES[State.MERGING].agent_flags == ("agents.gitAgent",)
    assert all(bool(spec.agent_flags) == (spec.kind is Kind.WORKING) for spec in STATES.values())


def test_kinds() -> None:
    assert STATES[State.CREATED].kind is Kind.INITIAL
    assert STATES[State.PAUSED].kind is Kind.PAUSED
    assert STATES[State.AWAITING_APPROVAL].kind is Kind.WAITING
    assert {s for s in State if is_terminal(s)} == set(TERMINAL)
    assert set(PIPELINE) | {State.FIXING} == WORKING


def test_pipeline_order_excludes_fixing() -> None:
    assert PIPELINE[0] is State.ANALYZING and PIPELINE[-1] is State.MERGING
    assert State.FIXING not in PIPELINE and len(PIPELINE) == 8


def test_one_transition_per_event() -> None:
    assert [spec.event for spec in TRANSITIONS] == list(Event)


def test_describe_is_plain_json_data() -> None:
    table = describe()
    assert json.loads(json.dumps(table)) == table
    by_event = {row["event"]: row for row in table}
    assert by_event["RESUME"]["sources"] == ["PAUSED"]
    assert by_event["TESTS_FAILED"]["target"] == "FIXING"
    assert "COMPLETED" not in by_event["CANCEL"]["sources"] and "PAUSED" in by_event["CANCEL"]["sources"]
    assert by_event["PAUSE"]["remembers_source"] is True
    assert by_event["ADVANCE"]["guard"]


# --- enabled states and next_state ------------------------------------------------------------


def test_enabled_states_any_flag_truthy_missing_is_off() -> None:
    assert enabled_states({}) == frozenset()
    assert enabled_states({"agents.backendDev": True}) == {State.BUILDING}
    assert enabled_states({"agents.frontendDev": 1, "agents.tester": 0, "agents.reviewer": None}) == {
        State.BUILDING
    }
    assert enabled_states(MVP_FLAGS) == {State.ANALYZING, State.PLANNING, State.ARCHITECTING}
    assert enabled_states(dict.fromkeys(ALL_FLAGS, True)) == WORKING


def test_next_state_skips_disabled_and_ends_in_completed() -> None:
    enabled = frozenset({State.PLANNING, State.TESTING})
    assert next_state(at(State.CREATED), enabled) is State.PLANNING
    assert next_state(at(State.PLANNING), enabled) is State.TESTING
    assert next_state(at(State.TESTING), enabled) is State.COMPLETED
    assert next_state(at(State.CREATED), frozenset()) is State.COMPLETED
    assert next_state(at(State.FIXING), frozenset()) is State.TESTING


def test_next_state_from_a_state_that_cannot_advance_is_illegal() -> None:
    with pytest.raises(IllegalTransition, match="PAUSED"):
        next_state(at(State.PAUSED), ALL_ENABLED)


# --- ADVANCE ----------------------------------------------------------------------------------


def test_mvp_flags_go_through_analysis_planning_architecture_to_completed() -> None:
    enabled = enabled_states(MVP_FLAGS)
    snapshot = Snapshot(State.CREATED)
    visited = [snapshot.state]
    while not is_terminal(snapshot.state):
        snapshot = fire(snapshot, Event.ADVANCE, enabled=enabled)
        visited.append(snapshot.state)
    assert visited == [State.CREATED, State.ANALYZING, State.PLANNING, State.ARCHITECTING, State.COMPLETED]
    assert snapshot.return_to is None


def test_advance_with_explicit_target_over_disabled_states() -> None:
    enabled = frozenset({State.ANALYZING, State.BUILDING})
    after = fire(at(State.ANALYZING), Event.ADVANCE, enabled=enabled, target=State.BUILDING)
    assert after == Snapshot(State.BUILDING)
    assert fire(at(State.BUILDING), Event.ADVANCE, enabled=enabled, target=State.COMPLETED) == Snapshot(
        State.COMPLETED
    )


def test_advance_refuses_to_skip_an_enabled_state() -> None:
    assert_illegal(at(State.ARCHITECTING), Event.ADVANCE, "DESIGNING is enabled and would be skipped",
                   target=State.BUILDING)
    assert_illegal(at(State.CREATED), Event.ADVANCE, "ANALYZING is enabled and would be skipped",
                   target=State.COMPLETED)


def test_advance_refuses_a_disabled_backward_or_non_pipeline_target() -> None:
    only_analyzing = frozenset({State.ANALYZING})
    assert_illegal(at(State.ANALYZING), Event.ADVANCE, "PLANNING is disabled (agents.projectManager is off)",
                   target=State.PLANNING, enabled=only_analyzing)
    for backward in (State.BUILDING, State.TESTING):
        assert_illegal(at(State.TESTING), Event.ADVANCE, "not a pipeline state after TESTING",
                       target=backward)
    assert_illegal(at(State.TESTING), Event.ADVANCE, "not a pipeline state", target=State.FIXING)
    assert_illegal(at(State.TESTING), Event.ADVANCE, "not a pipeline state", target=State.FAILED)


def test_advance_from_fixing_goes_only_to_testing() -> None:
    assert fire(at(State.FIXING), Event.ADVANCE, enabled=frozenset()) == Snapshot(State.TESTING)
    assert fire(at(State.FIXING), Event.ADVANCE, enabled=ALL_ENABLED, target=State.TESTING) == Snapshot(
        State.TESTING
    )
    assert_illegal(at(State.FIXING), Event.ADVANCE, "FIXING can only ADVANCE to TESTING",
                   target=State.REVIEWING)


@pytest.mark.parametrize("state", [State.PAUSED, State.AWAITING_APPROVAL])
def test_advance_from_a_stopped_state_is_illegal(state: State) -> None:
    assert_illegal(at(state), Event.ADVANCE, f"{state} can only")


# --- loops --------------------------------------------------------------------------------------


def test_tests_failed_goes_to_fixing_and_needs_the_bug_fixer() -> None:
    assert fire(at(State.TESTING), Event.TESTS_FAILED, enabled=ALL_ENABLED) == Snapshot(State.FIXING)
    assert_illegal(at(State.TESTING), Event.TESTS_FAILED, "FIXING is disabled (agents.bugFixer is off)",
                   enabled=ALL_ENABLED - {State.FIXING})
    assert_illegal(at(State.REVIEWING), Event.TESTS_FAILED, "REVIEWING can only")


def test_changes_requested_goes_back_to_building_and_needs_developers() -> None:
    assert fire(at(State.REVIEWING), Event.CHANGES_REQUESTED, enabled=ALL_ENABLED) == Snapshot(State.BUILDING)
    assert_illegal(at(State.REVIEWING), Event.CHANGES_REQUESTED,
                   "BUILDING is disabled (agents.frontendDev and agents.backendDev are off)",
                   enabled=ALL_ENABLED - {State.BUILDING})
    assert_illegal(at(State.TESTING), Event.CHANGES_REQUESTED, "TESTING can only")


# --- pause, approval, fail, cancel ------------------------------------------------------------


@pytest.mark.parametrize("state", [State.CREATED, *sorted(WORKING)])
def test_pause_then_resume_returns_to_the_same_state(state: State) -> None:
    paused = fire(at(state), Event.PAUSE, enabled=ALL_ENABLED)
    assert paused == Snapshot(State.PAUSED, return_to=state)
    assert fire(paused, Event.RESUME, enabled=frozenset()) == Snapshot(state)


def test_paused_can_only_resume_or_cancel() -> None:
    for event in set(Event) - {Event.RESUME, Event.CANCEL}:
        assert_illegal(at(State.PAUSED), event, "PAUSED can only RESUME or CANCEL")
    assert fire(at(State.PAUSED), Event.CANCEL, enabled=ALL_ENABLED) == Snapshot(State.CANCELLED)


@pytest.mark.parametrize("state", sorted(WORKING))
def test_await_approval_then_approve_returns_to_the_same_state(state: State) -> None:
    waiting = fire(at(state), Event.AWAIT_APPROVAL, enabled=ALL_ENABLED)
    assert waiting == Snapshot(State.AWAITING_APPROVAL, return_to=state)
    assert fire(waiting, Event.APPROVE, enabled=ALL_ENABLED) == Snapshot(state)
    assert fire(waiting, Event.FAIL, enabled=ALL_ENABLED) == Snapshot(State.FAILED)


def test_await_approval_needs_a_working_state() -> None:
    assert_illegal(at(State.CREATED), Event.AWAIT_APPROVAL, "CREATED can only")
    assert_illegal(at(State.AWAITING_APPROVAL), Event.PAUSE,
                   "AWAITING_APPROVAL can only APPROVE, FAIL or CANCEL")
    assert_illegal(at(State.ANALYZING), Event.APPROVE, "ANALYZING can only")


@pytest.mark.parametrize("state", [State.CREATED, *sorted(WORKING), State.AWAITING_APPROVAL])
def test_fail_from_created_working_or_awaiting_approval(state: State) -> None:
    assert fire(at(state), Event.FAIL, enabled=ALL_ENABLED) == Snapshot(State.FAILED)


@pytest.mark.parametrize("state", [s for s in State if s not in TERMINAL])
def test_cancel_from_every_non_terminal_state(state: State) -> None:
    assert fire(at(state), Event.CANCEL, enabled=ALL_ENABLED) == Snapshot(State.CANCELLED)


@pytest.mark.parametrize("state", TERMINAL)
@pytest.mark.parametrize("event", list(Event))
def test_nothing_happens_from_a_terminal_state(state: State, event: Event) -> None:
    assert_illegal(Snapshot(state), event, f"{state} is terminal")


# --- targets and bad input ----------------------------------------------------------------------


def test_explicit_target_of_other_events_must_match() -> None:
    assert fire(at(State.TESTING), Event.TESTS_FAILED, enabled=ALL_ENABLED, target=State.FIXING) == Snapshot(
        State.FIXING
    )
    assert fire(at(State.PAUSED), Event.RESUME, enabled=ALL_ENABLED, target=State.ANALYZING) == Snapshot(
        State.ANALYZING
    )
    assert_illegal(at(State.TESTING), Event.TESTS_FAILED, "goes to FIXING, not REVIEWING",
                   target=State.REVIEWING)
    assert_illegal(at(State.PAUSED), Event.RESUME, "goes to ANALYZING, not PLANNING", target=State.PLANNING)


def test_strings_are_accepted_and_unknown_names_refused() -> None:
    from_strings = fire(Snapshot("TESTING"), "TESTS_FAILED", enabled=ALL_ENABLED)  # type: ignore[arg-type]
    assert from_strings == Snapshot(State.FIXING) and from_strings.state is State.FIXING
    with pytest.raises(IllegalTransition, match="unknown event"):
        fire(at(State.TESTING), "EXPLODE", enabled=ALL_ENABLED)  # type: ignore[arg-type]
    with pytest.raises(IllegalTransition, match="unknown target state 'LIMBO'"):
        fire(at(State.TESTING), Event.ADVANCE, enabled=ALL_ENABLED, target="LIMBO")  # type: ignore[arg-type]


def test_snapshot_return_to_is_set_exactly_when_paused_or_awaiting_approval() -> None:
    with pytest.raises(UsageError, match="PAUSED run needs a return_to"):
        Snapshot(State.PAUSED)
    with pytest.raises(UsageError, match="AWAITING_APPROVAL run needs a return_to"):
        Snapshot(State.AWAITING_APPROVAL, return_to=State.CREATED)
    with pytest.raises(UsageError, match="TESTING run has no return_to"):
        Snapshot(State.TESTING, return_to=State.BUILDING)
    with pytest.raises(UsageError, match="unknown state 'LIMBO'"):
        Snapshot("LIMBO")  # type: ignore[arg-type]


# --- stateful -----------------------------------------------------------------------------------

# Mostly-on flags so the loops (TESTS_FAILED, CHANGES_REQUESTED) get exercised; the optional keys
# cover missing flags.
flag_value = st.sampled_from([True, True, True, 1, "yes", False, 0, None, ""])
flag_sets = st.fixed_dictionaries(dict.fromkeys(ALL_FLAGS, flag_value)) | st.fixed_dictionaries(
    {}, optional=dict.fromkeys(ALL_FLAGS, flag_value)
)


class RunMachine(RuleBasedStateMachine):
    """Random events, targets and flag sets against the real machine."""

    @initialize(flags=flag_sets)
    def start(self, flags: dict[str, object]) -> None:
        self.snapshot = Snapshot(State.CREATED)
        self.enabled = enabled_states(flags)
        self.state_before_pause: State | None = None
        self.terminal: Snapshot | None = None

    @rule(flags=flag_sets)
    def change_flags(self, flags: dict[str, object]) -> None:
        self.enabled = enabled_states(flags)

    @rule(data=st.data())
    def fire_event_allowed_here(self, data: st.DataObject) -> None:
        # FAIL and CANCEL are left to fire_event so that runs live long enough to loop and pause.
        choices = [e for e in allowed_events(self.snapshot.state) if e not in {Event.FAIL, Event.CANCEL}]
        self.fire_event(data.draw(st.sampled_from(choices or list(Event)), label="event"), None)

    @rule(event=st.sampled_from(Event), requested=st.none() | st.sampled_from(State))
    def fire_event(self, event: Event, requested: State | None) -> None:
        before = self.snapshot
        try:
            after = fire(before, event, enabled=self.enabled, target=requested)
        except IllegalTransition as refused:
            assert (refused.state, refused.event) == (before.state, event)
            assert self.snapshot == before
            return
        # Once terminal every event is illegal: reaching here from a terminal state is a bug.
        assert not is_terminal(before.state), f"{event} was allowed from terminal {before.state}"
        self._check_step(before, event, after)
        self.snapshot = after

    @rule()
    def advance(self) -> None:
        before = self.snapshot
        try:
            after = fire(before, Event.ADVANCE, enabled=self.enabled)
        except IllegalTransition:
            assert before.state in REMEMBERING or is_terminal(before.state)
            assert self.snapshot == before
            return
        assert not is_terminal(before.state)
        self._check_step(before, Event.ADVANCE, after)
        self.snapshot = after

    def _check_step(self, before: Snapshot, event: Event, after: Snapshot) -> None:
        if event is Event.PAUSE:
            self.state_before_pause = before.state
        if event is Event.RESUME:
            assert after.state is self.state_before_pause
        if event is Event.ADVANCE and before.state is State.FIXING:
            assert after.state is State.TESTING  # unconditionally, even if flags changed since TESTING
        elif event is Event.ADVANCE and after.state in PIPELINE:
            assert after.state in self.enabled, f"ADVANCE entered disabled {after.state}"

    @invariant()
    def state_is_known(self) -> None:
        assert self.snapshot.state in State
        assert STATES[self.snapshot.state].kind in Kind

    @invariant()
    def return_to_only_while_stopped(self) -> None:
        assert (self.snapshot.return_to is not None) == (self.snapshot.state in REMEMBERING)

    @invariant()
    def terminal_is_final(self) -> None:
        if self.terminal is not None:
            assert self.snapshot == self.terminal
        elif is_terminal(self.snapshot.state):
            self.terminal = self.snapshot


RunMachine.TestCase.settings = settings(
    max_examples=250, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestRunMachine = RunMachine.TestCase
