"""Storage-layer isolation: every statement a ``TenantView`` runs on the store's real SQLite connection (captured
with ``set_trace_callback``) that reads a tenant table carries the tenant's id; another tenant's run ids are
``NotFound``, as unknown ones are; and the isolation score (``aigentflow.tenants.isolation.measure``) finds no
leak in a store of three tenants, and finds the one planted."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from aigentflow.project.paths import ProjectPaths
from aigentflow.run.statemachine import State
from aigentflow.store.records import ArtifactRecord, ModelUsage, StepUsage
from aigentflow.store.sqlite import SQLiteRunStore
from aigentflow.tenants import registry
from aigentflow.tenants.isolation import measure
from aigentflow.tenants.scope import NotFound, TenantView

TENANT_TABLES = ("projects", "runs", "transitions", "steps", "artifacts", "audit", "controls", "releases",
                 "model_usage", "quotas")


def populate(store: SQLiteRunStore) -> dict[str, list[str]]:
    """Two runs for each of acme and globex, one for default: steps (with usage by model), artifacts, audit."""
    project = store.upsert_project("sample", {})
    for tenant in ("acme", "globex"):
        registry.create(store, tenant)
    runs: dict[str, list[str]] = {}
    for tenant, count in (("acme", 2), ("globex", 2), ("default", 1)):
        for _ in range(count):
            run = store.create_run(project_id=project, request="r", model="replay/demo", settings={}, flags={},
                                   tenant_id=tenant)
            step = store.begin_step(run.id, "analyze", "analyst", State.ANALYZING)
            store.complete_step(step, output={}, usage=StepUsage(10, 5, 0.01, 1, [], [
                ModelUsage("replay/demo", "replay", 1, 10, 5, 0.01)]),
                artifacts=[ArtifactRecord(run.id, "analyze", "research.md", "x", "ab" * 32, 3)],
                expected_version=run.version, to_state="PLANNING")
            store.append_audit("run.note", run.id, {"n": 1}, tenant_id=tenant)
            runs.setdefault(tenant, []).append(run.id)
    return runs


def touched_tables(statement: str) -> set[str]:
    return {t for t in TENANT_TABLES if re.search(rf"\b(FROM|JOIN|INTO|UPDATE)\s+{t}\b", statement, re.IGNORECASE)}


def test_every_statement_of_a_tenant_view_carries_the_tenant_and_other_tenants_ids_are_not_found(
        tmp_path: Path) -> None:
    store = SQLiteRunStore(tmp_path / "state.db", create=True)
    runs = populate(store)
    view = TenantView(store, "acme")
    statements: list[str] = []
    connection: sqlite3.Connection = store._conn  # the store's real connection: every statement it runs
    connection.set_trace_callback(statements.append)
    try:
        assert {r.id for r in view.list_runs(10)} == set(runs["acme"])
        mine = runs["acme"][0]
        assert view.get_run(mine).tenant_id == "acme"
        assert [s.step for s in view.steps(mine)] == ["analyze"]
        assert [t.to_state for t in view.transitions(mine)] == ["CREATED", "PLANNING"]
        assert [a.name for a in view.artifacts(mine)] == ["research.md"]
        assert {e.tenant_id for e in view.audit()} == {"acme"} and len(view.audit(mine)) == 1
        assert {r["run_id"] for r in view.costs("run")} == set(runs["acme"])
        assert [(r["model"], r["model_calls"]) for r in view.costs("model")] == [("replay/demo", 2)]
        assert view.releases() == []
        for theirs in (runs["globex"][0], runs["default"][0], "260101-000000-dead"):
            for read in (view.get_run, view.steps, view.transitions, view.artifacts, view.audit):
                with pytest.raises(NotFound, match=f"no run '{theirs}' for tenant acme"):
                    read(theirs)
    finally:
        connection.set_trace_callback(None)
    reads = [s for s in statements if touched_tables(s)]
    assert len(reads) >= 20, statements
    unscoped = [s for s in reads if "tenant_id='acme'" not in s.replace(" = ", "=")]
    assert unscoped == [], "every read of a tenant table is filtered by the tenant"
    store.close()


def test_a_view_needs_a_tenant_id_an_empty_one_would_read_everything(tmp_path: Path) -> None:
    from aigentflow.exceptions import UsageError

    with SQLiteRunStore(tmp_path / "state.db", create=True) as store:
        for bad in ("", "ACME", "acme;--"):
            with pytest.raises(UsageError, match="not a lowercase slug"):
                TenantView(store, bad)


def test_the_isolation_score_probes_every_pair_of_tenants_and_finds_a_planted_leak(sample_repo: Path) -> None:
    database = ProjectPaths(sample_repo).database
    with SQLiteRunStore(database) as store:
        runs = populate(store)
        audit_rows = len(store.audit())  # each run's note, and acme's and globex's tenant.created
    clean = measure(sample_repo)
    # per tenant: each of its runs and audit rows is its own; per ordered pair: 6 probes per run of the other
    # (run list, costs, get_run, steps, transitions, artifacts) and 1 for the audit
    own = sum(len(r) for r in runs.values()) + audit_rows
    pairs = sum(6 * len(runs[other]) + 1 for mine in runs for other in runs if other != mine)
    assert clean == {"checked": own + pairs, "leaks": 0, "score": 1.0, "tenants": 3, "findings": 0}

    leaked = runs["globex"][0]  # a row written under the wrong tenant: acme's costs now show globex's run
    with sqlite3.connect(database) as raw:
        raw.execute("UPDATE steps SET tenant_id='acme' WHERE run_id=?", (leaked,))
    found = measure(sample_repo)
    assert found["leaks"] == 1 and found["score"] == pytest.approx(1 - 1 / found["checked"])


def test_a_project_of_one_tenant_has_nothing_to_leak(sample_repo: Path) -> None:
    assert measure(sample_repo) == {"checked": 0, "leaks": 0, "score": 1.0, "tenants": 1, "findings": 0}
