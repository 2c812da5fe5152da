"""The run store on real SQLite files: schema, runs, compare-and-set moves, steps, audit, controls,
and what a user sees when the database is newer, corrupted or locked by another process."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aigentflow.exceptions import StoreError, UnknownRun
from aigentflow.store import SQLiteRunStore, StaleRun, open_store
from aigentflow.store.migrations import LATEST_VERSION
from aigentflow.store.records import ArtifactRecord, StepUsage

TABLES = ["projects", "runs", "transitions", "steps", "artifacts", "audit", "controls"]

# Holds an exclusive lock on the database (in the journal mode given) until a line arrives on stdin.
LOCK_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
mode = conn.execute(f"PRAGMA journal_mode={sys.argv[2]}").fetchone()[0]
conn.execute("BEGIN EXCLUSIVE")
print(mode, flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SQLiteRunStore]:
    opened = SQLiteRunStore(db_path, create=True)
    yield opened
    opened.close()


def new_run(store: SQLiteRunStore, request: str = "Add due dates"):
    project_id = store.upsert_project("sample", {"primary_language": "Python"})
    return store.create_run(project_id=project_id, request=request, model="replay/demo",
                            settings={"model": {"name": "replay/demo"}}, flags={"testing": False})


def raw(db_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(db_path, isolation_level=None)


# -- schema and opening -------------------------------------------------------------------------


def test_new_database_is_migrated_to_the_latest_version_and_reopening_changes_nothing(db_path: Path) -> None:
    first = SQLiteRunStore(db_path, create=True)
    assert first.schema_version() == LATEST_VERSION
    first.close()
    with raw(db_path) as conn:
        tables_before = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"))
    assert set(TABLES) <= set(tables_before)

    again = SQLiteRunStore(db_path)
    assert again.schema_version() == LATEST_VERSION
    assert again.migrate() == LATEST_VERSION
    again.close()
    with raw(db_path) as conn:
        tables_after = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"))
        assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    assert tables_after == tables_before


def test_missing_database_is_refused_unless_created(db_path: Path) -> None:
    with pytest.raises(StoreError, match="aigentflow init"):
        open_store(db_path)
    assert not db_path.exists()


def test_database_from_a_newer_aigentflow_is_refused(store: SQLiteRunStore, db_path: Path) -> None:
    store.close()
    with raw(db_path) as conn:
        conn.execute(f"PRAGMA user_version={LATEST_VERSION + 1}")
    with pytest.raises(StoreError, match="newer") as caught:
        SQLiteRunStore(db_path)
    assert "upgrade aigentflow" in str(caught.value)


def test_garbage_file_is_reported_as_corrupted_with_what_to_do(db_path: Path) -> None:
    db_path.write_bytes(b"this is not a sqlite database\n" * 200)
    with pytest.raises(StoreError, match="corrupted") as caught:
        SQLiteRunStore(db_path)
    message = str(caught.value)
    assert str(db_path) in message
    assert "Move it aside" in message and "aigentflow init" in message
    assert db_path.read_bytes() == b"this is not a sqlite database\n" * 200


def test_journal_mode_is_wal(store: SQLiteRunStore, db_path: Path) -> None:
    new_run(store)
    with raw(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_readonly_store_refuses_writes(store: SQLiteRunStore, db_path: Path) -> None:
    run = new_run(store)
    reader = open_store(db_path, readonly=True)
    try:
        assert reader.get_run(run.id).request == "Add due dates"
        with pytest.raises(StoreError, match="read-only"):
            reader.set_control("paused", True)
    finally:
        reader.close()


# -- locking by another process -----------------------------------------------------------------


def _hold_lock(db_path: Path, journal_mode: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(db_path), journal_mode],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == journal_mode.lower()
    return holder


def _release(holder: subprocess.Popen[str]) -> None:
    if holder.poll() is None:
        holder.communicate("release\n", timeout=10)
    assert holder.returncode == 0


def test_write_while_another_process_holds_the_lock_fails_in_bounded_time_wal(
    store: SQLiteRunStore, db_path: Path
) -> None:
    before = new_run(store, request="written before the lock")
    holder = _hold_lock(db_path, "WAL")
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="locked") as caught:
            store.set_control("paused", True)
        assert time.monotonic() - started < 8
        assert "Nothing was changed" in str(caught.value)
        assert store.get_run(before.id).request == "written before the lock"  # readers are not blocked in WAL
    finally:
        _release(holder)
    assert store.get_control("paused") is None
    store.set_control("paused", True)
    assert store.get_control("paused") is True
    assert [r.id for r in store.list_runs()] == [before.id]


def test_opening_to_write_while_another_process_holds_the_lock_fails_in_bounded_time_rollback_journal(
    store: SQLiteRunStore, db_path: Path
) -> None:
    before = new_run(store, request="written before the lock")
    store.close()  # the holder can only leave WAL mode when no other connection is open
    holder = _hold_lock(db_path, "DELETE")
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="locked"):
            SQLiteRunStore(db_path)
        assert time.monotonic() - started < 8
    finally:
        _release(holder)
    reopened = SQLiteRunStore(db_path)
    try:
        assert reopened.get_run(before.id).request == "written before the lock"
        assert [t.to_state for t in reopened.transitions(before.id)] == ["CREATED"]
    finally:
        reopened.close()


# -- runs ---------------------------------------------------------------------------------------


def test_create_get_and_list_runs(store: SQLiteRunStore) -> None:
    first = new_run(store, request="first request")
    time.sleep(0.002)  # created_at has millisecond resolution; newest first needs distinct stamps
    second = new_run(store, request="second request")
    assert first.state == "CREATED" and first.version == 0
    assert first.settings == {"model": {"name": "replay/demo"}} and first.flags == {"testing": False}
    got = store.get_run(second.id)
    assert got.request == "second request" and got.model == "replay/demo"
    assert [r.id for r in store.list_runs()] == [second.id, first.id]
    assert [r.id for r in store.list_runs(limit=1)] == [second.id]
    assert [t.event for t in store.transitions(first.id)] == ["CREATE"]
    with pytest.raises(UnknownRun, match="no-such-run"):
        store.get_run("no-such-run")


def test_resolve_run_id_by_unique_prefix_ambiguous_prefix_and_unknown(store: SQLiteRunStore) -> None:
    one, two = new_run(store).id, new_run(store).id
    shared = len(os.path.commonprefix([one, two]))  # noqa: RUF071 - a common prefix of two id strings is meant
    assert shared > 0  # both ids start with the creation date
    assert store.resolve_run_id(one[: shared + 1]) == one
    assert store.resolve_run_id(two[: shared + 1]) == two
    assert store.resolve_run_id(one) == one
    with pytest.raises(UnknownRun, match="several runs") as caught:
        store.resolve_run_id(one[:shared])
    assert one in str(caught.value) and two in str(caught.value)
    with pytest.raises(UnknownRun, match="no run matches"):
        store.resolve_run_id("zz")


def test_resolve_run_id_treats_underscore_literally(store: SQLiteRunStore) -> None:
    new_run(store)
    with pytest.raises(UnknownRun):
        store.resolve_run_id("______")  # no run id starts with underscores


def test_transition_is_compare_and_set(store: SQLiteRunStore) -> None:
    run = new_run(store)
    moved = store.transition(run.id, expected_version=0, to_state="ANALYZING", return_to=None, event="START")
    assert moved.state == "ANALYZING" and moved.version == 1
    log_before = store.transitions(run.id)

    with pytest.raises(StaleRun, match="another process"):
        store.transition(run.id, expected_version=0, to_state="FAILED", return_to=None, event="FAIL",
                         error="should not land", terminal=True)
    after = store.get_run(run.id)
    assert (after.state, after.version, after.error, after.finished_at) == ("ANALYZING", 1, None, None)
    assert store.transitions(run.id) == log_before
    assert [(t.from_state, t.to_state) for t in log_before] == [(None, "CREATED"), ("CREATED", "ANALYZING")]


def test_transitions_table_is_append_only(store: SQLiteRunStore, db_path: Path) -> None:
    run = new_run(store)
    with raw(db_path) as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE transitions SET to_state='DONE' WHERE run_id=?", (run.id,))
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM transitions WHERE run_id=?", (run.id,))
    assert [t.to_state for t in store.transitions(run.id)] == ["CREATED"]


# -- steps --------------------------------------------------------------------------------------


def _artifact(run_id: str, name: str = "research.md") -> ArtifactRecord:
    return ArtifactRecord(run_id=run_id, step="analyze", name=name, path=f"runs/{run_id}/{name}",
                          sha256="ab" * 32, bytes=12)


def test_completed_step_is_returned_as_completed_and_never_redone(store: SQLiteRunStore, db_path: Path) -> None:
    run = new_run(store)
    step = store.begin_step(run.id, "analyze", "analyst", "ANALYZING")
    assert (step.attempt, step.status) == (1, "started")
    usage = StepUsage(input_tokens=10, output_tokens=5, cost_usd=0.25, model_calls=1, prompt_hashes=["sha256:x"])
    moved = store.complete_step(step, output={"summary": "done"}, usage=usage, artifacts=[_artifact(run.id)],
                                expected_version=run.version, to_state="PLANNING")
    assert moved.state == "PLANNING" and moved.version == run.version + 1

    again = store.begin_step(run.id, "analyze", "analyst", "ANALYZING", new_attempt=True)
    assert (again.attempt, again.status, again.output) == (1, "completed", {"summary": "done"})
    assert (again.input_tokens, again.output_tokens, again.model_calls) == (10, 5, 1)
    assert again.prompt_hashes == ["sha256:x"]

    with pytest.raises(StaleRun, match="already completed"):
        store.complete_step(step, output={"summary": "twice"}, usage=usage, artifacts=[_artifact(run.id)],
                            expected_version=moved.version, to_state="ARCHITECTING")
    assert store.get_run(run.id).state == "PLANNING"
    assert [a.name for a in store.artifacts(run.id)] == ["research.md"]
    with raw(db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM artifacts").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM steps").fetchone()[0] == 1
    assert store.steps(run.id)[0].output == {"summary": "done"}


def test_complete_step_with_stale_version_writes_nothing(store: SQLiteRunStore) -> None:
    run = new_run(store)
    step = store.begin_step(run.id, "analyze", "analyst", "ANALYZING")
    with pytest.raises(StaleRun):
        store.complete_step(step, output={"summary": "x"}, usage=StepUsage(), artifacts=[_artifact(run.id)],
                            expected_version=run.version + 7, to_state="PLANNING")
    assert store.steps(run.id)[0].status == "started"
    assert store.artifacts(run.id) == []
    assert store.get_run(run.id).state == "CREATED"


def test_interrupted_step_is_retried_under_the_same_key(store: SQLiteRunStore) -> None:
    run = new_run(store)
    first = store.begin_step(run.id, "analyze", "analyst", "ANALYZING")
    resumed = store.begin_step(run.id, "analyze", "analyst", "ANALYZING", new_attempt=True)
    assert resumed.key == first.key == (run.id, "analyze", 1)
    assert resumed.status == "started"
    assert len(store.steps(run.id)) == 1


def test_failed_step_gets_a_second_attempt_only_when_asked(store: SQLiteRunStore) -> None:
    run = new_run(store)
    first = store.begin_step(run.id, "plan", "project_manager", "PLANNING")
    store.fail_step(first, "reply never validated", StepUsage(input_tokens=3, model_calls=3))
    same = store.begin_step(run.id, "plan", "project_manager", "PLANNING")
    assert (same.attempt, same.status, same.error) == (1, "failed", "reply never validated")
    assert same.model_calls == 3

    second = store.begin_step(run.id, "plan", "project_manager", "PLANNING", new_attempt=True)
    assert (second.attempt, second.status) == (2, "started")
    assert [(s.attempt, s.status) for s in store.steps(run.id)] == [(1, "failed"), (2, "started")]


def test_begin_step_on_an_unknown_run_names_the_run(store: SQLiteRunStore) -> None:
    new_run(store)
    with pytest.raises(UnknownRun, match="no-such-run"):
        store.begin_step("no-such-run", "analyze", "analyst", "ANALYZING")


# -- controls, audit, tenancy -------------------------------------------------------------------


def test_controls_set_and_get(store: SQLiteRunStore) -> None:
    assert store.get_control("emergency_stop") is None
    assert store.get_control("emergency_stop", default=False) is False
    store.set_control("emergency_stop", {"reason": "cost spike"})
    store.set_control("emergency_stop", {"reason": "overwritten"})
    assert store.get_control("emergency_stop") == {"reason": "overwritten"}
    assert store.get_control("emergency_stop", tenant_id="other") is None


def test_audit_append_and_read(store: SQLiteRunStore) -> None:
    run = new_run(store)
    store.append_audit("run.created", run.id, {"request": "Add due dates"})
    store.append_audit("config.changed", None, {"key": "model.name"})
    store.append_audit("run.finished", run.id, {"state": "DONE"}, at="2025-01-01T00:00:00.000+00:00")
    assert [a.event for a in store.audit()] == ["run.created", "config.changed", "run.finished"]
    for_run = store.audit(run.id)
    assert [(a.event, a.data) for a in for_run] == [("run.created", {"request": "Add due dates"}),
                                                    ("run.finished", {"state": "DONE"})]
    assert for_run[1].at == "2025-01-01T00:00:00.000+00:00"
    assert for_run[0].seq < for_run[1].seq


def test_every_table_rows_carry_the_default_tenant(store: SQLiteRunStore, db_path: Path) -> None:
    run = new_run(store)
    moved = store.transition(run.id, expected_version=0, to_state="ANALYZING", return_to=None, event="START")
    step = store.begin_step(run.id, "analyze", "analyst", "ANALYZING")
    store.complete_step(step, output={}, usage=StepUsage(), artifacts=[_artifact(run.id)],
                        expected_version=moved.version, to_state="PLANNING")
    store.append_audit("run.created", run.id, {})
    store.set_control("paused", False)
    assert store.get_run(run.id).tenant_id == "default"
    with raw(db_path) as conn:
        for table in TABLES:
            tenants = conn.execute(f"SELECT tenant_id, COUNT(*) FROM {table} GROUP BY tenant_id").fetchall()
            assert len(tenants) == 1 and tenants[0][0] == "default" and tenants[0][1] >= 1, table
