"""The conformance suite every ``RunStore`` must pass (the SQLite store and its in-memory twin).

Not collected by itself: a ``test_*.py`` module imports these tests and provides a ``backend``
fixture, a ``Backend`` whose ``open()`` returns a new handle on one store's data (for SQLite a new
connection to the same file). Each test checks what a user of the store (the engine, the runner,
``aigentflow status``) relies on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from aigentflow.exceptions import StoreError, UnknownRun
from aigentflow.run.statemachine import State
from aigentflow.store.protocol import RunStore
from aigentflow.store.records import ArtifactRecord, RunRecord, StepUsage
from aigentflow.store.sqlite import StaleRun

RACERS = 8


@dataclass
class Backend:
    name: str
    open: Callable[[], RunStore]
    """A new handle on the same store (closing it leaves the others open)."""


@pytest.fixture
def store(backend: Backend) -> Iterator[RunStore]:
    with backend.open() as opened:
        yield opened


def new_run(store: RunStore, request: str = "Add due dates", tenant_id: str = "default") -> RunRecord:
    project_id = store.upsert_project("sample", {"primary_language": "Python"})
    return store.create_run(project_id=project_id, request=request, model="replay/demo",
                            settings={"model": {"name": "replay/demo"}}, flags={"testing": False},
                            tenant_id=tenant_id)


def artifact(run: RunRecord, step: str, name: str, sha: str = "ab" * 32) -> ArtifactRecord:
    return ArtifactRecord(run.id, step, name, f".aigentflow/runs/{run.id}/{name}", sha, 42)


def race(count: int, action: Callable[[int], Any]) -> tuple[list[Any], list[BaseException]]:
    """Run ``action(i)`` in ``count`` threads released together; (results, errors)."""
    barrier = threading.Barrier(count)
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def body(index: int) -> None:
        barrier.wait()
        try:
            value = action(index)
        except BaseException as exc:  # noqa: BLE001 - collected for the test to judge
            with lock:
                errors.append(exc)
        else:
            with lock:
                results.append(value)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results, errors


# -- projects and runs ----------------------------------------------------------------------------


def test_a_store_holds_one_project_whose_facts_are_refreshed(store: RunStore) -> None:
    assert store.get_project() is None
    first = store.upsert_project("sample", {"test_command": "pytest"})
    again = store.upsert_project("renamed", {"test_command": "pytest -q"})
    project = store.get_project()
    assert again == first and project is not None
    assert (project["id"], project["name"], project["facts"], project["tenant_id"]) == \
        (first, "renamed", {"test_command": "pytest -q"}, "default")


def test_a_new_run_is_created_at_version_0_with_one_create_entry(store: RunStore) -> None:
    run = new_run(store)
    assert (run.state, run.version, run.return_to, run.finished_at, run.error) == ("CREATED", 0, None, None, None)
    assert (run.request, run.model, run.settings, run.flags) == \
        ("Add due dates", "replay/demo", {"model": {"name": "replay/demo"}}, {"testing": False})
    assert (run.pause_requested, run.model_calls, run.owner_pid) == (False, 0, None)
    assert store.get_run(run.id) == run
    [entry] = store.transitions(run.id)
    assert (entry.from_state, entry.to_state, entry.event, entry.run_id) == (None, "CREATED", "CREATE", run.id)


def test_runs_are_found_by_id_or_unique_prefix_and_bad_prefixes_are_refused(store: RunStore) -> None:
    runs = [new_run(store, f"request {i}") for i in range(3)]
    ids = [r.id for r in runs]
    for run in runs:
        assert store.resolve_run_id(run.id) == run.id
        assert store.resolve_run_id(run.id.upper()) == run.id  # as SQLite's LIKE: ASCII case-insensitive
        unique = next(run.id[:n] for n in range(1, len(run.id) + 1)
                      if sum(i.startswith(run.id[:n]) for i in ids) == 1)
        assert store.resolve_run_id(unique) == run.id
    with pytest.raises(UnknownRun, match="several runs"):
        store.resolve_run_id(ids[0][:2])
    with pytest.raises(UnknownRun, match="no run matches"):
        store.resolve_run_id("zz")
    with pytest.raises(UnknownRun, match="no run matches"):
        store.resolve_run_id("%")  # not a wildcard
    with pytest.raises(UnknownRun, match="aigentflow runs"):
        store.get_run(ids[0][:-1])  # get_run wants the exact id


def test_listing_is_newest_first_with_a_limit_and_a_tenant_filter(store: RunStore) -> None:
    created = []
    for i in range(4):
        created.append(new_run(store, f"request {i}", tenant_id="acme" if i % 2 else "default"))
        time.sleep(0.003)  # created_at has millisecond resolution
    newest_first = [r.id for r in reversed(created)]
    assert [r.id for r in store.list_runs()] == newest_first
    assert [r.id for r in store.list_runs(limit=2)] == newest_first[:2]
    assert [r.id for r in store.list_runs(tenant_id="acme")] == [created[3].id, created[1].id]
    assert store.list_runs(limit=0) == []


def test_records_are_copies_callers_cannot_change_what_is_stored(store: RunStore) -> None:
    settings = {"model": {"name": "replay/demo"}, "hooks": [1, 2]}
    project_id = store.upsert_project("sample", {})
    run = store.create_run(project_id=project_id, request="r", model="m", settings=settings, flags={"a": (1, 2)})
    settings["model"]["name"] = "changed"
    run.settings["hooks"].append(3)
    again = store.get_run(run.id)
    assert again.settings == {"model": {"name": "replay/demo"}, "hooks": [1, 2]}
    assert again.flags == {"a": [1, 2]}  # stored as JSON: a tuple comes back a list
    project = store.get_project()
    assert project is not None
    project["facts"]["x"] = 1
    assert store.get_project()["facts"] == {}  # type: ignore[index]


# -- compare-and-set transitions ------------------------------------------------------------------


def test_a_transition_from_the_current_version_applies_and_is_logged(store: RunStore) -> None:
    run = new_run(store)
    moved = store.transition(run.id, expected_version=0, to_state=State.ANALYZING, return_to=None, event="ADVANCE",
                             reason="go")
    assert (moved.state, moved.version, moved.finished_at) == ("ANALYZING", 1, None)
    assert store.get_run(run.id) == moved
    failed = store.transition(run.id, expected_version=1, to_state="FAILED", return_to=None, event="FAIL",
                              error="boom", terminal=True)
    assert (failed.state, failed.version, failed.error) == ("FAILED", 2, "boom")
    assert failed.finished_at is not None
    log = store.transitions(run.id)
    assert [(t.from_state, t.to_state, t.event, t.reason) for t in log] == [
        (None, "CREATED", "CREATE", None), ("CREATED", "ANALYZING", "ADVANCE", "go"),
        ("ANALYZING", "FAILED", "FAIL", None)]
    assert [t.seq for t in log] == sorted({t.seq for t in log})


def test_an_error_is_kept_until_replaced_and_pausing_clears_a_pause_request(store: RunStore) -> None:
    run = new_run(store)
    run = store.transition(run.id, expected_version=0, to_state="PLANNING", return_to=None, event="ADVANCE",
                           error="first")
    run = store.transition(run.id, expected_version=1, to_state="PLANNING", return_to=None, event="ADVANCE")
    assert run.error == "first"
    store.request_pause(run.id)
    assert store.get_run(run.id).pause_requested and store.get_run(run.id).version == 2  # no version bump
    paused = store.transition(run.id, expected_version=2, to_state="PAUSED", return_to="PLANNING", event="PAUSE")
    assert (paused.pause_requested, paused.return_to, paused.state) == (False, "PLANNING", "PAUSED")


def test_a_stale_transition_raises_and_changes_nothing(store: RunStore) -> None:
    run = new_run(store)
    store.transition(run.id, expected_version=0, to_state="ANALYZING", return_to=None, event="ADVANCE")
    before, log = store.get_run(run.id), store.transitions(run.id)
    with pytest.raises(StaleRun, match="changed underneath"):
        store.transition(run.id, expected_version=0, to_state="FAILED", return_to=None, event="FAIL", error="x",
                         terminal=True)
    assert store.get_run(run.id) == before
    assert store.transitions(run.id) == log
    with pytest.raises(UnknownRun):
        store.transition("no-such-run", expected_version=0, to_state="FAILED", return_to=None, event="FAIL")


# -- steps ----------------------------------------------------------------------------------------


def test_a_committed_step_is_not_redone_and_committing_twice_writes_once(store: RunStore) -> None:
    run = new_run(store)
    run = store.transition(run.id, expected_version=0, to_state="PLANNING", return_to=None, event="ADVANCE")
    step = store.begin_step(run.id, "plan", "planner", State.PLANNING)
    assert (step.attempt, step.status, step.state, step.role) == (1, "started", "PLANNING", "planner")
    assert store.begin_step(run.id, "plan", "planner", "PLANNING") == step  # interrupted: same key again
    usage = StepUsage(10, 5, 0.25, 2, ["h1", "h2"])
    moved = store.complete_step(step, output={"plan": ["a"]}, usage=usage, artifacts=[artifact(run, "plan", "plan.md")],
                                expected_version=run.version, to_state="DESIGNING")
    assert (moved.state, moved.version) == ("DESIGNING", run.version + 1)
    [done] = store.steps(run.id)
    assert (done.status, done.output, done.error, done.key) == ("completed", {"plan": ["a"]}, None, step.key)
    assert (done.input_tokens, done.output_tokens, done.cost_usd, done.model_calls, done.prompt_hashes) == \
        (10, 5, 0.25, 2, ["h1", "h2"])
    assert store.begin_step(run.id, "plan", "planner", "PLANNING", new_attempt=True) == done  # never redone

    snapshot = (store.get_run(run.id), store.transitions(run.id), store.artifacts(run.id), store.steps(run.id))
    with pytest.raises(StaleRun, match="already completed"):
        store.complete_step(step, output={"plan": ["b"]}, usage=StepUsage(), artifacts=[artifact(run, "plan", "x.md")],
                            expected_version=moved.version, to_state="BUILDING")
    assert (store.get_run(run.id), store.transitions(run.id), store.artifacts(run.id), store.steps(run.id)) == snapshot
    [art] = store.artifacts(run.id)
    assert (art.name, art.step, art.bytes, art.created_at) == ("plan.md", "plan", 42, done.finished_at)


def test_a_step_commit_against_a_moved_run_writes_nothing(store: RunStore) -> None:
    run = new_run(store)
    step = store.begin_step(run.id, "plan", "planner", "PLANNING")
    store.request_pause(run.id)
    store.transition(run.id, expected_version=0, to_state="PLANNING", return_to=None, event="ADVANCE")
    with pytest.raises(StaleRun, match="changed underneath"):
        store.complete_step(step, output={"plan": 1}, usage=StepUsage(), artifacts=[artifact(run, "plan", "plan.md")],
                            expected_version=0, to_state="DESIGNING")
    [still] = store.steps(run.id)
    assert (still.status, still.output) == ("started", None)
    assert store.artifacts(run.id) == []
    assert store.get_run(run.id).state == "PLANNING"


def test_a_failed_step_is_returned_as_is_unless_a_new_attempt_is_asked_for(store: RunStore) -> None:
    run = new_run(store)
    first = store.begin_step(run.id, "build", "builder", "BUILDING")
    store.fail_step(first, "tests broke", StepUsage(3, 4, 0.5, 1, ["h"]))
    failed = store.begin_step(run.id, "build", "builder", "BUILDING")
    assert (failed.attempt, failed.status, failed.error, failed.input_tokens) == (1, "failed", "tests broke", 3)
    assert failed.finished_at is not None
    second = store.begin_step(run.id, "build", "builder", "BUILDING", new_attempt=True)
    assert (second.attempt, second.status) == (2, "started")
    store.complete_step(second, output={}, usage=StepUsage(), artifacts=[], expected_version=0, to_state="TESTING")
    store.fail_step(second, "too late")  # a completed step stays completed
    assert [(s.attempt, s.status) for s in store.steps(run.id)] == [(1, "failed"), (2, "completed")]
    with pytest.raises(UnknownRun):
        store.begin_step("no-such-run", "build", "builder", "BUILDING")


def test_an_artifact_name_is_recorded_once_per_run(store: RunStore) -> None:
    run = new_run(store)
    plan = store.begin_step(run.id, "plan", "planner", "PLANNING")
    run = store.complete_step(plan, output={}, usage=StepUsage(), artifacts=[artifact(run, "plan", "notes.md", "aa")],
                              expected_version=0, to_state="DESIGNING")
    design = store.begin_step(run.id, "design", "designer", "DESIGNING")
    store.complete_step(design, output={}, usage=StepUsage(), expected_version=run.version, to_state="BUILDING",
                        artifacts=[artifact(run, "design", "notes.md", "bb"), artifact(run, "design", "a.md")])
    arts = store.artifacts(run.id)
    assert sorted((a.name, a.step) for a in arts) == [("a.md", "design"), ("notes.md", "design")]
    assert next(a for a in arts if a.name == "notes.md").sha256 == "bb"
    assert [(a.created_at, a.name) for a in arts] == sorted((a.created_at, a.name) for a in arts)


# -- what resuming relies on ----------------------------------------------------------------------


def test_a_new_handle_resumes_where_an_interrupted_driver_stopped(backend: Backend) -> None:
    """What ``RunEngine.drive(resume=True)`` reads: the run (state, version, pause request, owner),
    the completed steps' outputs, and the interrupted step under its key."""
    with backend.open() as driver:
        run = new_run(driver)
        driver.claim(run.id, pid=4242, host="node-a")
        run = driver.transition(run.id, expected_version=0, to_state="PLANNING", return_to=None, event="ADVANCE")
        plan = driver.begin_step(run.id, "plan", "planner", "PLANNING")
        run = driver.complete_step(plan, output={"plan": "p"}, usage=StepUsage(1, 1, 0.0, 1), artifacts=[],
                                   expected_version=run.version, to_state="DESIGNING")
        design = driver.begin_step(run.id, "design", "designer", "DESIGNING")
        driver.add_model_calls(run.id, 3)
        driver.request_pause(run.id)  # Ctrl-C, then the driver dies mid-step
    with backend.open() as resumer:
        found = resumer.get_run(run.id)
        assert (found.state, found.version, found.pause_requested, found.model_calls) == ("DESIGNING", 2, True, 3)
        assert (found.owner_pid, found.owner_host) == (4242, "node-a") and found.heartbeat_at
        resumer.clear_pause_request(run.id)
        resumer.claim(run.id, pid=5151, host="node-b")
        found = resumer.get_run(run.id)
        assert (found.pause_requested, found.owner_pid, found.version) == (False, 5151, 2)
        done = {s.step: s.output for s in resumer.steps(run.id) if s.status == "completed"}
        assert done == {"plan": {"plan": "p"}}
        again = resumer.begin_step(run.id, "design", "designer", "DESIGNING")
        assert again == design
        assert resumer.add_model_calls(run.id, 2) == 5
        resumer.release(run.id)
        released = resumer.get_run(run.id)
        assert (released.owner_pid, released.owner_host, released.version) == (None, None, 2)


def test_a_closed_store_refuses_to_be_used(backend: Backend) -> None:
    with backend.open() as store:
        run = new_run(store)
    with pytest.raises(StoreError):
        store.get_run(run.id)
    with pytest.raises(StoreError):
        store.append_audit("x", None, {})
    store.close()  # closing again is harmless
    with backend.open() as other:
        assert other.get_run(run.id).id == run.id


# -- controls, audit, releases --------------------------------------------------------------------


def test_controls_are_per_tenant_json_values_with_a_default(store: RunStore) -> None:
    assert store.get_control("emergency.pause_all", False) is False
    store.set_control("emergency.pause_all", True)
    store.set_control("limits", {"runs": [1, 2]}, tenant_id="acme")
    assert store.get_control("emergency.pause_all", False) is True
    assert store.get_control("emergency.pause_all", False, tenant_id="acme") is False
    assert store.get_control("limits", tenant_id="acme") == {"runs": [1, 2]}
    store.set_control("emergency.pause_all", False)
    assert store.get_control("emergency.pause_all", True) is False


def test_audit_keeps_the_order_entries_were_appended_and_filters_by_run(store: RunStore) -> None:
    run = new_run(store)
    store.append_audit("run.created", run.id, {"model": "m"}, tenant_id="acme")
    store.append_audit("admin.emergency", None, {"pause_all": True})
    store.append_audit("run.paused", run.id, {"reason": "r"}, at="2030-01-01T00:00:00.000+00:00")
    entries = store.audit()
    assert [e.event for e in entries] == ["run.created", "admin.emergency", "run.paused"]
    assert [e.seq for e in entries] == sorted({e.seq for e in entries})
    assert (entries[0].tenant_id, entries[0].data, entries[1].run_id) == ("acme", {"model": "m"}, None)
    assert [e.event for e in store.audit(run.id)] == ["run.created", "run.paused"]
    assert store.audit(run.id)[1].at == "2030-01-01T00:00:00.000+00:00"


def test_a_release_is_recorded_once_per_tag_and_listed_newest_first(store: RunStore) -> None:
    project_id = store.upsert_project("sample", {})
    first = store.record_release(project_id=project_id, version="1.0.0", tag="v1.0.0", commit_sha="a" * 40,
                                 changelog="first", run_ids=["b", "a"])
    assert (first.version, first.run_ids, first.changelog) == ("1.0.0", ["a", "b"], "first")
    time.sleep(0.003)
    again = store.record_release(project_id=project_id, version="9", tag="v1.0.0", commit_sha="c" * 40,
                                 changelog="other", run_ids=[])
    assert again == first
    second = store.record_release(project_id=project_id, version="1.1.0", tag="v1.1.0", commit_sha="b" * 40,
                                  changelog="second", run_ids=[], tenant_id="acme")
    assert [r.tag for r in store.releases()] == ["v1.1.0", "v1.0.0"]
    assert store.releases(tenant_id="acme") == [second]


# -- concurrency ----------------------------------------------------------------------------------


def test_of_threads_racing_from_one_version_exactly_one_moves_the_run(backend: Backend) -> None:
    with backend.open() as store:
        run = new_run(store)
    handles = [backend.open() for _ in range(RACERS)]
    try:
        results, errors = race(RACERS, lambda i: handles[i].transition(
            run.id, expected_version=0, to_state="ANALYZING", return_to=None, event="ADVANCE", reason=f"racer {i}"))
    finally:
        for handle in handles:
            handle.close()
    assert len(results) == 1 and len(errors) == RACERS - 1
    assert all(isinstance(e, StaleRun) for e in errors), errors
    with backend.open() as store:
        assert store.get_run(run.id).version == 1
        moves = [t for t in store.transitions(run.id) if t.event == "ADVANCE"]
        assert len(moves) == 1 and moves[0].reason.startswith("racer ")  # type: ignore[union-attr]
        assert results[0] == store.get_run(run.id)


def test_of_threads_racing_to_commit_one_step_exactly_one_writes(backend: Backend) -> None:
    with backend.open() as store:
        run = new_run(store)
        step = store.begin_step(run.id, "plan", "planner", "PLANNING")
    handles = [backend.open() for _ in range(RACERS)]
    try:
        results, errors = race(RACERS, lambda i: handles[i].complete_step(
            step, output={"by": i}, usage=StepUsage(i, i, 0.0, 1), artifacts=[artifact(run, "plan", f"by-{i}.md")],
            expected_version=0, to_state="DESIGNING"))
    finally:
        for handle in handles:
            handle.close()
    assert len(results) == 1 and all(isinstance(e, StaleRun) for e in errors) and len(errors) == RACERS - 1
    with backend.open() as store:
        [done] = store.steps(run.id)
        winner = done.output["by"]  # type: ignore[index]
        assert [a.name for a in store.artifacts(run.id)] == [f"by-{winner}.md"]
        assert done.input_tokens == winner
        assert store.get_run(run.id).version == 1 and len(store.transitions(run.id)) == 2


def test_concurrent_audit_appends_are_all_kept(backend: Backend) -> None:
    handles = [backend.open() for _ in range(RACERS)]
    try:
        _, errors = race(RACERS, lambda i: [handles[i].append_audit("tick", None, {"racer": i, "n": n})
                                            for n in range(10)])
    finally:
        for handle in handles:
            handle.close()
    assert errors == []
    with backend.open() as store:
        entries = store.audit()
    assert len(entries) == RACERS * 10 and len({e.seq for e in entries}) == RACERS * 10
    for racer in range(RACERS):
        assert [e.data["n"] for e in entries if e.data["racer"] == racer] == list(range(10))


def test_a_run_for_an_unknown_project_or_calls_for_an_unknown_run_are_refused(store: RunStore) -> None:
    with pytest.raises(StoreError):
        store.create_run(project_id="no-such-project", request="x", model="replay/demo",
                         settings={}, flags={})
    with pytest.raises(UnknownRun):
        store.add_model_calls("261203-000000-dead", 1)
    assert store.list_runs(limit=5) == [], "nothing was written"


def test_costs_add_up_per_run_tenant_step_and_model_failed_attempts_included(store: RunStore) -> None:
    from aigentflow.exceptions import UsageError
    from aigentflow.store.records import ModelUsage

    first, second = new_run(store, tenant_id="acme"), new_run(store, tenant_id="globex")
    plan = store.begin_step(first.id, "plan", "planner", State.PLANNING)
    store.fail_step(plan, "rate limited",
                    StepUsage(100, 10, 0.5, 2, [], [ModelUsage("gpt", "openai", 2, 100, 10, 0.5)]))
    again = store.begin_step(first.id, "plan", "planner", State.PLANNING, new_attempt=True)
    store.complete_step(again, output={}, usage=StepUsage(300, 30, 1.25, 2, [], [
        ModelUsage("gpt", "openai", 1, 100, 10, 0.25), ModelUsage("claude", "anthropic", 1, 200, 20, 1.0)]),
        artifacts=[], expected_version=first.version, to_state="DESIGNING")
    other = store.begin_step(second.id, "analyze", "analyst", State.ANALYZING)
    store.complete_step(other, output={}, usage=StepUsage(50, 5, 0.0, 1, [], [ModelUsage("replay/demo", "replay", 1,
                                                                                         50, 5, 0.0)]),
                        artifacts=[], expected_version=second.version, to_state="PLANNING")

    runs = {r["run_id"]: (r["tenant_id"], r["model_calls"], r["cost_usd"]) for r in store.costs("run")}
    assert runs == {first.id: ("acme", 4, 1.75), second.id: ("globex", 1, 0.0)}, "the failed attempt was paid too"
    assert [(r["tenant_id"], r["runs"], r["input_tokens"], r["cost_usd"]) for r in store.costs("tenant")] == \
        [("acme", 1, 400, 1.75), ("globex", 1, 50, 0.0)]
    assert [(r["model"], r["provider"], r["model_calls"], r["output_tokens"], r["cost_usd"])
            for r in store.costs("model")] == [("claude", "anthropic", 1, 20, 1.0), ("gpt", "openai", 3, 20, 0.75),
                                               ("replay/demo", "replay", 1, 5, 0.0)]
    assert [(r["model"], r["cost_usd"]) for r in store.costs("model", tenant_id="globex")] == [("replay/demo", 0.0)]
    assert [(r["step"], r["cost_usd"]) for r in store.costs("step", run_id=first.id)] == [("plan", 1.75)]
    with pytest.raises(UsageError, match="run, tenant, model, step"):
        store.costs("day")


# -- tenants and quotas ---------------------------------------------------------------------------


def test_the_tenant_registry_always_holds_default_and_refuses_a_second_registration(store: RunStore) -> None:
    from aigentflow.exceptions import UsageError

    assert [t.id for t in store.tenants()] == ["default"]
    acme = store.create_tenant("acme", "Acme Corp")
    assert (acme.id, acme.name, acme.status) == ("acme", "Acme Corp", "active")
    assert store.get_tenant("acme") == acme and store.get_tenant("globex") is None
    with pytest.raises(UsageError, match="already exists"):
        store.create_tenant("acme", "again")
    with pytest.raises(UsageError, match="already exists"):
        store.create_tenant("default", "again")
    assert store.set_tenant_status("acme", "suspended").status == "suspended"
    with pytest.raises(UsageError, match="no tenant 'globex'"):
        store.set_tenant_status("globex", "active")
    assert [t.id for t in store.tenants()] == ["acme", "default"]


def test_quotas_are_set_replaced_removed_and_refused_for_an_unknown_tenant(store: RunStore) -> None:
    store.create_tenant("acme", "Acme")
    store.set_quota("acme", "runs", 5, "day")
    store.set_quota("acme", "tokens", 1000, "month")
    replaced = store.set_quota("acme", "runs", 7, "day")
    assert (replaced.kind, replaced.limit, replaced.period) == ("runs", 7.0, "day")
    assert [(q.kind, q.limit, q.period) for q in store.quotas("acme")] == [("runs", 7.0, "day"),
                                                                          ("tokens", 1000.0, "month")]
    assert store.quotas("default") == []
    with pytest.raises(StoreError):
        store.set_quota("globex", "runs", 1, "day")
    assert store.delete_quota("acme", "runs") == 1 and store.delete_quota("acme", "runs") == 0
    assert [q.kind for q in store.quotas("acme")] == ["tokens"]


def test_tenant_usage_counts_runs_created_and_steps_finished_since_a_time(store: RunStore) -> None:
    from aigentflow.store.rows import now_iso

    before = now_iso()
    first, _ = new_run(store, tenant_id="acme"), new_run(store, tenant_id="acme")
    other = new_run(store, tenant_id="globex")
    done = store.begin_step(first.id, "analyze", "analyst", State.ANALYZING)
    store.complete_step(done, output={}, usage=StepUsage(100, 20, 0.5, 2), artifacts=[],
                        expected_version=first.version, to_state="PLANNING")
    failed = store.begin_step(first.id, "plan", "planner", State.PLANNING)
    store.fail_step(failed, "paused", StepUsage(30, 0, 0.25, 1))
    store.begin_step(other.id, "analyze", "analyst", State.ANALYZING)  # started only: nothing used yet
    usage = store.tenant_usage("acme", before)
    assert (usage.runs, usage.model_calls, usage.tokens, usage.cost_usd) == (2, 3, 150, 0.75)
    assert store.tenant_usage("globex", before).tokens == 0 and store.tenant_usage("globex", before).runs == 1
    assert store.tenant_usage("acme", "9999").runs == 0


def test_reads_scoped_to_a_tenant_never_return_another_tenants_rows(store: RunStore) -> None:
    mine, theirs = new_run(store, tenant_id="acme"), new_run(store, tenant_id="globex")
    step = store.begin_step(theirs.id, "analyze", "analyst", State.ANALYZING)
    store.complete_step(step, output={}, usage=StepUsage(), artifacts=[artifact(theirs, "analyze", "research.md")],
                        expected_version=theirs.version, to_state="PLANNING")
    store.append_audit("run.note", theirs.id, {}, tenant_id="globex")
    store.append_audit("run.note", mine.id, {}, tenant_id="acme")
    assert store.get_run(mine.id, tenant_id="acme").id == mine.id
    with pytest.raises(UnknownRun):
        store.get_run(theirs.id, tenant_id="acme")
    assert store.steps(theirs.id, tenant_id="acme") == [] and len(store.steps(theirs.id, tenant_id="globex")) == 1
    assert store.transitions(theirs.id, tenant_id="acme") == []
    assert len(store.transitions(theirs.id, tenant_id="globex")) == 2
    assert store.artifacts(theirs.id, tenant_id="acme") == []
    assert [a.run_id for a in store.audit(tenant_id="acme")] == [mine.id]
    assert [a.run_id for a in store.audit(theirs.id, tenant_id="acme")] == []
