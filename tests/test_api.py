"""The HTTP API through its real ASGI app (FastAPI's TestClient: real HTTP semantics, status codes,
headers and bodies) on real SQLite stores. No Ray: runs are recorded through the store API, and the run
submissions here are the ones `aigentflow run` refuses before it would connect to Ray."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from aigentflow.api.auth import UNAUTHORIZED
from aigentflow.api.submit import error_message, refusal_status
from aigentflow.project.paths import ProjectPaths
from aigentflow.store.sqlite import SQLiteRunStore
from aigentflow.tenants.mode import set_single_tenant_mode
from tests.api_support import auth, client, make_project, new_token, record_run, revoke


@pytest.fixture
def project(tmp_path: Path) -> ProjectPaths:
    return make_project(tmp_path / "project")


def test_every_kind_of_bad_token_gets_the_same_401(project: ProjectPaths) -> None:
    token_id, token = new_token(project, "acme")
    revoked_id, revoked = new_token(project, "acme")
    revoke(project, revoked_id)
    _, other = new_token(project, "acme")
    wrong_secret = other[:-4] + ("AAAA" if not other.endswith("AAAA") else "BBBB")
    api = client(project)
    assert api.get("/v1/runs", headers=auth(token)).status_code == 200
    bad_headers = [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {token}"},
        {"Authorization": f"Bearer {token} extra"},
        {"Authorization": "Bearer agf_00000000_" + "x" * 43},  # well formed, no such id
        {"Authorization": f"Bearer {token[:-1]}"},  # malformed (too short)
        {"Authorization": f"Bearer {wrong_secret}"},  # a real id, the wrong secret
        {"Authorization": f"Bearer {revoked}"},
        {"Authorization": token},
    ]
    for headers in bad_headers:
        for path in ("/v1/runs", "/v1/runs/any", "/v1/audit", "/v1/costs", "/v1/nothing-here"):
            response = api.get(path, headers=headers)
            assert response.status_code == 401, (headers, path)
            assert response.json() == UNAUTHORIZED and response.headers["www-authenticate"] == "Bearer"
    assert token_id not in json.dumps(UNAUTHORIZED)


def test_the_database_keeps_no_token_only_its_hash_and_audits_create_and_revoke(project: ProjectPaths) -> None:
    token_id, token = new_token(project, "acme", name="ci")
    revoke(project, token_id)
    secret = token.split("_", 2)[2]
    for suffix in ("", "-wal"):
        data = Path(f"{project.database}{suffix}")
        if data.exists():
            assert secret.encode() not in data.read_bytes() and token.encode() not in data.read_bytes()
    with SQLiteRunStore(project.database) as store:
        entries = [(e.event, e.tenant_id, e.data) for e in store.audit() if e.event.startswith("token.")]
    assert entries == [("token.created", "acme", {"token_id": token_id, "name": "ci"}),
                       ("token.revoked", "acme", {"token_id": token_id, "name": "ci"})]


def test_a_tenant_sees_only_its_own_runs_and_another_tenants_id_is_404(project: ProjectPaths) -> None:
    mine = [record_run(project, "acme", f"acme feature {n}", cost=0.01) for n in range(3)]
    theirs = record_run(project, "globex", "globex secret plan", cost=0.5)
    _, acme = new_token(project, "acme")
    _, globex = new_token(project, "globex")
    api = client(project)
    listing = api.get("/v1/runs", headers=auth(acme)).json()
    assert {r["id"] for r in listing["runs"]} == {r.id for r in mine} and listing["count"] == 3
    assert api.get("/v1/runs?limit=2", headers=auth(acme)).json()["count"] == 3
    assert len(api.get("/v1/runs?limit=2", headers=auth(acme)).json()["runs"]) == 2
    missing = api.get("/v1/runs/260101-000000-beef", headers=auth(acme))
    for path in (f"/v1/runs/{theirs.id}", f"/v1/runs/{theirs.id}/events", f"/v1/runs/{theirs.id}/audit",
                 f"/v1/runs/{theirs.id}/events?wait=1"):
        response = api.get(path, headers=auth(acme))
        assert response.status_code == 404 and response.content == missing.content, path
        assert "globex" not in response.text
    assert missing.status_code == 404 and missing.json() == {"detail": "no such run"}
    costs = api.get("/v1/costs", headers=auth(acme)).json()
    assert costs["total"]["cost_usd"] == pytest.approx(0.03) and {r["run_id"] for r in costs["rows"]} == {
        r.id for r in mine}
    by_model = api.get("/v1/costs?by=model", headers=auth(globex)).json()
    assert by_model["rows"] == [{"model": "replay/demo", "provider": "replay", "model_calls": 1,
                                 "input_tokens": 100, "output_tokens": 10, "cost_usd": 0.5}]
    audit = api.get("/v1/audit", headers=auth(acme)).json()["entries"]
    assert {e["run_id"] for e in audit} == {r.id for r in mine} | {None}  # its runs, and its tokens' entries
    assert "globex" not in json.dumps(audit)
    assert [r["id"] for r in api.get("/v1/runs", headers=auth(globex)).json()["runs"]] == [theirs.id]


def test_a_run_its_steps_costs_audit_and_events(project: ProjectPaths) -> None:
    run = record_run(project, "acme", "Add due dates", cost=0.25, calls=3)
    _, token = new_token(project, "acme")
    api = client(project)
    detail = api.get(f"/v1/runs/{run.id}", headers=auth(token)).json()
    assert detail["state"] == "PLANNING" and detail["request"] == "Add due dates"
    assert [(s["step"], s["status"], s["model_calls"]) for s in detail["steps"]] == [("analyze", "completed", 3)]
    assert detail["costs"] == {"model_calls": 3, "input_tokens": 300, "output_tokens": 30, "cost_usd": 0.25}
    audit = api.get(f"/v1/runs/{run.id}/audit", headers=auth(token)).json()["entries"]
    assert [e["event"] for e in audit] == ["run.created"] and audit[0]["data"]["request_chars"] == 13
    events = api.get(f"/v1/runs/{run.id}/events", headers=auth(token)).json()
    assert [(e["seq"], e["to_state"]) for e in events["events"]] == [(1, "CREATED"), (2, "ANALYZING"),
                                                                       (3, "PLANNING")]
    assert events["next"] == 3 and events["terminal"] is False and events["state"] == "PLANNING"
    assert api.get(f"/v1/runs/{run.id}/events?since=3", headers=auth(token)).json()["events"] == []
    # a long-poll returns as soon as the next event is recorded
    def finish() -> None:
        time.sleep(0.6)
        with SQLiteRunStore(project.database) as store:
            store.transition(run.id, expected_version=store.get_run(run.id).version, to_state="COMPLETED",
                             return_to=None, event="FINISH", terminal=True)

    mover = threading.Thread(target=finish)
    started = time.monotonic()
    mover.start()
    waited = api.get(f"/v1/runs/{run.id}/events?since=3&wait=20", headers=auth(token)).json()
    mover.join()
    assert time.monotonic() - started < 10
    assert [(e["seq"], e["to_state"]) for e in waited["events"]] == [(4, "COMPLETED")] and waited["terminal"]
    # Server-Sent Events: every event from the start, then the end
    with api.stream("GET", f"/v1/runs/{run.id}/events", headers={**auth(token), "Accept": "text/event-stream"}) as s:
        assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
        body = "".join(s.iter_text())
    assert body.count("event: transition") == 4 and "id: 4\n" in body
    assert body.rstrip().endswith('event: end\ndata: {"state": "COMPLETED"}')
    resumed = api.get(f"/v1/runs/{run.id}/events", headers={**auth(token), "Accept": "text/event-stream",
                                                             "Last-Event-ID": "3"})
    assert resumed.text.count("event: transition") == 1 and "COMPLETED" in resumed.text


def test_malformed_bodies_get_422_saying_what_is_wrong(project: ProjectPaths) -> None:
    _, token = new_token(project, "acme")
    api = client(project)
    cases = [
        ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, "JSON"),
        ({"json": {}}, "request: Field required"),
        ({"json": {"request": "   "}}, "the request is blank"),
        ({"json": {"request": "x", "colour": "red"}}, "colour: Extra inputs are not permitted"),
        ({"json": {"request": "x", "set": {"run.tenant": "globex"}}}, "run.tenant cannot be set"),
        ({"json": {"request": "x", "set": {"build.test_command": "rm -rf /"}}},
         "build.test_command cannot be set through the API"),
        ({"json": {"request": "x", "set": {"flags.agents.tester": ["x"]}}}, "set.flags.agents.tester"),
        ({"json": {"request": 7}}, "request: Input should be a valid string"),
        ({"json": {"request": "x", "model": "--record=/tmp/x"}}, "model: String should match pattern"),
        ({"json": {"request": "x", "set": {"flags.a=b": "1"}}}, "a key is dotted words"),
    ]
    for kwargs, said in cases:
        response = api.post("/v1/runs", headers={**auth(token), **kwargs.pop("headers", {})}, **kwargs)
        assert response.status_code == 422, (kwargs, response.text)
        assert response.json()["detail"].startswith("invalid request: ") and said in response.json()["detail"], (
            said, response.json())
    bad_query = api.get("/v1/runs?limit=0", headers=auth(token))
    assert bad_query.status_code == 422 and "limit" in bad_query.json()["detail"]
    assert api.get("/v1/costs?by=tenant", headers=auth(token)).status_code == 422
    # without a valid token, a malformed body is never looked at
    assert api.post("/v1/runs", content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 401
    with SQLiteRunStore(project.database) as store:
        assert store.list_runs() == []


def test_single_tenant_mode_serves_only_the_operator_tenant(project: ProjectPaths) -> None:
    _, operator = new_token(project, "default")
    _, acme = new_token(project, "acme")
    api = client(project)
    with SQLiteRunStore(project.database) as store:
        set_single_tenant_mode(store, True)
    refused = api.get("/v1/runs", headers=auth(acme))
    assert refused.status_code == 503 and "single-tenant mode is on" in refused.json()["detail"]
    assert api.get("/v1/runs", headers=auth(operator)).status_code == 200
    assert api.get("/v1/runs", headers={"Authorization": "Bearer nope"}).status_code == 401
    with SQLiteRunStore(project.database) as store:
        set_single_tenant_mode(store, False)
    assert api.get("/v1/runs", headers=auth(acme)).status_code == 200


def test_openapi_is_public_and_describes_every_endpoint(project: ProjectPaths) -> None:
    response = client(project).get("/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths) == {"/v1/runs", "/v1/runs/{run_id}", "/v1/runs/{run_id}/events", "/v1/runs/{run_id}/audit",
                          "/v1/audit", "/v1/costs"}
    assert set(paths["/v1/runs"]) == {"get", "post"}
    assert client(project).get("/docs").status_code == 404


def test_a_run_refused_by_its_checks_is_409_with_the_run_s_own_message(sample_repo: Path) -> None:
    paths = ProjectPaths(sample_repo)
    _, token = new_token(paths, "acme")
    api = client(paths)
    unknown = api.post("/v1/runs", headers=auth(token), json={"request": "Add due dates", "model": "not-a-model"})
    assert unknown.status_code == 409 and "unknown model 'not-a-model'" in unknown.json()["detail"]
    cassette = api.post("/v1/runs", headers=auth(token), json={"request": "Add due dates", "model": "replay/nope"})
    assert cassette.status_code == 409 and "no cassette 'nope'" in cassette.json()["detail"]
    hot = api.post("/v1/runs", headers=auth(token), json={"request": "x", "set": {"model.temperature": "hot"}})
    assert hot.status_code == 409 and "model.temperature" in hot.json()["detail"]
    with SQLiteRunStore(paths.database) as store:
        assert store.list_runs() == [], "a refused run is never recorded"
    logs = sorted((paths.state_dir / "api" / "submissions").glob("*.log"))
    # one log per submission; run ids made in the same second do not sort by time, so match by content
    texts = [log.read_text() for log in logs]
    assert len(logs) == 3 and [any(said in t for t in texts) for said in (
        "unknown model 'not-a-model'", "no cassette 'nope'", "model.temperature")] == [True, True, True]


def test_refusal_messages_and_their_status() -> None:
    said = "Model replay/demo\nerror: tenant acme is over its quota of 10 runs a day; wait or raise it\n"
    assert error_message(said, 2) == "tenant acme is over its quota of 10 runs a day; wait or raise it"
    assert refusal_status(error_message(said, 2)) == 429
    assert refusal_status("unknown model 'x'") == 409
    assert error_message("", 1) == "`aigentflow run` exited with status 1 and said nothing"
    assert error_message("Traceback\n  boom\nValueError: x\n", 1).endswith("ValueError: x")


def test_a_run_whose_ray_cannot_be_reached_is_refused_and_a_slow_one_is_504(sample_repo: Path) -> None:
    from fastapi.testclient import TestClient

    from aigentflow.api.app import create_app
    from aigentflow.api.submit import Submitter

    paths = ProjectPaths(sample_repo)
    _, token = new_token(paths, "acme")
    nowhere = TestClient(create_app(paths, Submitter(paths, address="127.0.0.1:1")))
    refused = nowhere.post("/v1/runs", headers=auth(token), json={"request": "Add due dates", "model": "replay/demo"})
    assert refused.status_code == 409 and "nothing answers at the Ray address 127.0.0.1:1" in refused.json()["detail"]
    impatient = Submitter(paths, address="127.0.0.1:1", timeout_s=0.2)
    slow = TestClient(create_app(paths, impatient)).post("/v1/runs", headers=auth(token), json={"request": "x"})
    assert slow.status_code == 504 and "was not recorded within" in slow.json()["detail"]
    run_id = slow.json()["id"]
    log = paths.state_dir / "api" / "submissions" / f"{run_id}.log"
    deadline = time.monotonic() + 60
    while "nothing answers" not in log.read_text():  # the run's process goes on, and refuses it itself
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    impatient.reap()
    with SQLiteRunStore(paths.database) as store:
        assert store.list_runs() == []


def test_a_tenant_over_its_quota_is_refused_429_with_what_remains_and_when_it_resets(sample_repo: Path) -> None:
    from tests.conftest import aigentflow

    paths = ProjectPaths(sample_repo)
    _, token = new_token(paths, "acme")
    quota = aigentflow("tenants", "quota", "set", "acme", "--runs", "0", "--period", "day", cwd=sample_repo)
    assert quota.returncode == 0, quota.stderr
    refused = client(paths).post("/v1/runs", headers=auth(token), json={"request": "Add due dates"})
    assert refused.status_code == 429, refused.text
    detail = refused.json()["detail"]
    assert "quota exhausted for tenant acme" in detail and "runs 0/0" in detail and "resets at" in detail
    with SQLiteRunStore(paths.database) as store:
        assert store.list_runs() == [], "a refused run is never recorded"
        assert [e.event for e in store.audit(tenant_id="acme") if e.event.startswith("quota")] == [
            "quota.set", "quota.exhausted"]
