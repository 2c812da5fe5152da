"""Both run stores, SQLite (on real files) and in memory, against one conformance suite
(``store_conformance.py``); and, for SQLite, processes racing to move the same run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aigentflow.store import InMemoryRunStore, RunStore, SQLiteRunStore
from tests.store_conformance import *  # noqa: F403 (the suite's tests, collected here)
from tests.store_conformance import Backend, new_run


@pytest.fixture(params=["sqlite", "memory"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        path = tmp_path / "state.db"
        SQLiteRunStore(path, create=True).close()
        return Backend("sqlite", lambda: SQLiteRunStore(path))
    shared = InMemoryRunStore()
    return Backend("memory", shared.handle)


def test_both_stores_implement_the_protocol(tmp_path: Path) -> None:
    with SQLiteRunStore(tmp_path / "state.db", create=True) as sqlite_store:
        assert isinstance(sqlite_store, RunStore)
    assert isinstance(InMemoryRunStore(), RunStore)


RACER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from aigentflow.store import SQLiteRunStore, StaleRun
    db, run_id, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    with SQLiteRunStore(db) as store:
        version = store.get_run(run_id).version
        print("ready", flush=True)
        while not go.exists():
            time.sleep(0.001)
        try:
            store.transition(run_id, expected_version=version, to_state="ANALYZING", return_to=None,
                             event="ADVANCE", reason=f"process {sys.argv[4]}")
        except StaleRun:
            print("stale", flush=True)
        else:
            print("won", flush=True)
""")


def test_of_processes_racing_from_one_version_exactly_one_moves_the_run(tmp_path: Path) -> None:
    db, go = tmp_path / "state.db", tmp_path / "go"
    with SQLiteRunStore(db, create=True) as store:
        run = new_run(store)
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(db), run.id, str(go), str(i)],
                               stdout=subprocess.PIPE, text=True) for i in range(3)]
    for racer in racers:  # every process has read version 0 before any may write
        assert racer.stdout is not None and racer.stdout.readline().strip() == "ready"
    go.touch()
    outcomes = sorted(racer.communicate(timeout=60)[0].strip() for racer in racers)
    assert [racer.returncode for racer in racers] == [0, 0, 0]
    assert outcomes == ["stale", "stale", "won"]
    with SQLiteRunStore(db, readonly=True) as store:
        assert store.get_run(run.id).version == 1
        assert [t.to_state for t in store.transitions(run.id)] == ["CREATED", "ANALYZING"]
