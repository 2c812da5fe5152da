"""What the HTTP API's tests share: a project on a real SQLite store in a real git repository, runs
recorded through the store API (no Ray), tokens, and a client on the real ASGI app."""

from __future__ import annotations

import subprocess
from pathlib import Path

from fastapi.testclient import TestClient

from aigentflow.api.app import create_app
from aigentflow.project.paths import ProjectPaths
from aigentflow.store.records import ModelUsage, RunRecord, StepUsage
from aigentflow.store.sqlite import SQLiteRunStore
from aigentflow.tenants.tokens import TokenStore


def make_project(root: Path) -> ProjectPaths:
    """A git repository with a state database holding one project (what `aigentflow init` leaves, minus
    the facts the API does not read)."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    paths = ProjectPaths(root)
    paths.state_dir.mkdir(exist_ok=True)
    with SQLiteRunStore(paths.database, create=True) as store:
        store.upsert_project("sample", {"primary_language": "Python"})
    return paths


def record_run(paths: ProjectPaths, tenant: str, request: str, *, cost: float = 0.001, calls: int = 1,
               finish: bool = False) -> RunRecord:
    """A run of ``tenant``, as a driver would leave it: created, its analysis step done (with usage), an
    audit entry; ``finish`` takes it on to COMPLETED."""
    with SQLiteRunStore(paths.database) as store:
        project = store.get_project()["id"]
        run = store.create_run(project_id=project, request=request, model="replay/demo",
                               settings={"model": {"name": "replay/demo"}}, flags={}, tenant_id=tenant)
        store.append_audit("run.created", run.id, {"model": "replay/demo", "request_chars": len(request)},
                           tenant_id=tenant)
        run = store.transition(run.id, expected_version=run.version, to_state="ANALYZING", return_to=None,
                               event="START")
        step = store.begin_step(run.id, "analyze", "analyst", "ANALYZING")
        run = store.complete_step(step, output={"summary": request}, artifacts=[], expected_version=run.version,
                                  to_state="PLANNING", usage=StepUsage(100 * calls, 10 * calls, cost, calls, [], [
                                      ModelUsage("replay/demo", "replay", calls, 100 * calls, 10 * calls, cost)]))
        if finish:
            run = store.transition(run.id, expected_version=run.version, to_state="COMPLETED", return_to=None,
                                   event="FINISH", terminal=True)
        return run


def new_token(paths: ProjectPaths, tenant: str, name: str = "") -> tuple[str, str]:
    """(token id, token) of a new token of ``tenant`` (registered first if it is not yet)."""
    with SQLiteRunStore(paths.database) as store:
        if store.get_tenant(tenant) is None:
            store.create_tenant(tenant, tenant)
    with TokenStore(paths.database) as tokens:
        record, token = tokens.create(tenant, name)
    return record.id, token


def revoke(paths: ProjectPaths, token_id: str) -> None:
    with TokenStore(paths.database) as tokens:
        tokens.revoke(token_id)


def client(paths: ProjectPaths) -> TestClient:
    return TestClient(create_app(paths))


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
