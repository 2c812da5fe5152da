"""`aigentflow tokens` and `aigentflow serve` as a user runs them: real subprocesses, a real server on a
free 127.0.0.1 port, real HTTP; and one run submitted over HTTP, driven on the session's Ray to COMPLETED
with the replay model."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import DEMO_REQUEST, _bin, _free_port, aigentflow, cli_env


def register(repo: Path, *tenants: str) -> None:
    for tenant in tenants:
        made = aigentflow("tenants", "create", tenant, cwd=repo, timeout=60)
        assert made.returncode == 0 or "already exists" in made.stderr, made.stderr


def create_token(repo: Path, tenant: str) -> str:
    if tenant != "default":
        register(repo, tenant)
    created = aigentflow("tokens", "create", tenant, cwd=repo, timeout=60)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip()


@contextmanager
def serving(repo: Path, *args: str, port: int | None = None) -> Iterator[tuple[str, Path]]:
    """`aigentflow serve --port N` in ``repo`` until the block ends: (its base URL, its output file)."""
    port = port or _free_port()
    output = repo.parent / f"serve-{port}.log"
    with output.open("wb") as sink:
        server = subprocess.Popen([_bin("aigentflow"), "serve", "--port", str(port), *args], cwd=repo,
                                  stdout=sink, stderr=subprocess.STDOUT, env=cli_env())
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while "Application startup complete" not in output.read_text():
            assert server.poll() is None, output.read_text()
            assert time.monotonic() < deadline, output.read_text()
            time.sleep(0.1)
        yield base, output
    finally:
        server.send_signal(signal.SIGINT)
        try:
            # Ctrl-C: a graceful shutdown, then the exit status of an interrupted command (128 + SIGINT)
            assert server.wait(timeout=30) == 130, output.read_text()
            assert "Application shutdown complete" in output.read_text()
        except subprocess.TimeoutExpired:
            server.kill()
            raise


def test_tokens_create_list_revoke(sample_repo: Path) -> None:
    unregistered = aigentflow("tokens", "create", "acme", cwd=sample_repo)
    assert unregistered.returncode == 2 and "no tenant 'acme' is registered" in unregistered.stderr
    assert "aigentflow tenants create acme" in unregistered.stderr and "agf_" not in unregistered.stdout
    register(sample_repo, "acme", "globex")
    created = aigentflow("tokens", "create", "acme", "--name", "ci bot", "--json", cwd=sample_repo)
    assert created.returncode == 0, created.stderr
    record = json.loads(created.stdout)
    token = record["token"]
    assert token.startswith(f"agf_{record['id']}_") and record["tenant_id"] == "acme" and record["active"]
    plain = aigentflow("tokens", "create", "globex", cwd=sample_repo)
    assert plain.stdout.strip().startswith("agf_") and "shown once" in plain.stderr
    listing = aigentflow("tokens", "list", cwd=sample_repo)
    assert listing.returncode == 0 and record["id"] in listing.stdout and "ci bot" in listing.stdout
    assert "globex" in listing.stdout and "agf_" not in listing.stdout
    only = json.loads(aigentflow("tokens", "list", "--tenant", "acme", "--json", cwd=sample_repo).stdout)
    assert [t["id"] for t in only] == [record["id"]] and "token" not in only[0] and "hash" not in only[0]
    revoked = aigentflow("tokens", "revoke", record["id"], cwd=sample_repo)
    assert revoked.returncode == 0 and f"token {record['id']} of tenant acme revoked" in revoked.stdout
    again = aigentflow("tokens", "revoke", record["id"], cwd=sample_repo)
    assert again.returncode == 0 and "was already revoked" in again.stdout
    after = json.loads(aigentflow("tokens", "list", "--tenant", "acme", "--json", cwd=sample_repo).stdout)
    assert after[0]["revoked_at"] and after[0]["active"] is False
    unknown = aigentflow("tokens", "revoke", "deadbeef", cwd=sample_repo)
    assert unknown.returncode == 2 and "no API token 'deadbeef'" in unknown.stderr and "tokens list" in unknown.stderr
    bad = aigentflow("tokens", "create", "two words", cwd=sample_repo)
    assert bad.returncode == 2 and "is not a lowercase slug" in bad.stderr
    audit = json.loads(aigentflow("audit", "--event", "token.", "--json", cwd=sample_repo).stdout)
    assert [(e["event"], e["tenant_id"]) for e in audit] == [
        ("token.created", "acme"), ("token.created", "globex"), ("token.revoked", "acme")]
    assert token not in json.dumps(audit)


def test_tokens_and_the_api_import_neither_ray_nor_litellm(sample_repo: Path) -> None:
    for code in ("from aigentflow.cli.main import main; import sys; sys.argv=['aigentflow','tokens','list']; main()",
                 "from aigentflow.api.app import create_app"):
        result = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=sample_repo,
                                capture_output=True, text=True, env=cli_env(), check=False)
        modules = {line.split("|")[-1].strip().split(".")[0] for line in result.stderr.splitlines() if "|" in line}
        assert "ray" not in modules and "litellm" not in modules, code


def test_run_id_option_is_checked_before_anything_is_recorded(sample_repo: Path) -> None:
    bad = aigentflow("run", DEMO_REQUEST, "--run-id", "../etc", cwd=sample_repo)
    assert bad.returncode == 2 and "is not a run id" in bad.stderr
    assert json.loads(aigentflow("runs", "--json", cwd=sample_repo).stdout) == []


def test_serve_over_real_http_logs_paths_but_never_a_token(sample_repo: Path) -> None:
    token = create_token(sample_repo, "acme")
    # The client outlives the server: the server closes the kept-alive connection first, so that connection's
    # TIME_WAIT is on the server's port when it is started again below.
    with httpx.Client(timeout=30) as http, serving(sample_repo) as (base, output):
        port = base.rsplit(":", 1)[1]
        http.base_url = httpx.URL(base)
        listed = http.get("/v1/runs", headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200 and listed.json() == {"runs": [], "count": 0}
        in_query = http.get(f"/v1/runs?access_token={token}")
        assert in_query.status_code == 401 and in_query.headers["www-authenticate"] == "Bearer"
        assert http.get("/v1/runs/nope", headers={"Authorization": f"Bearer {token}"}).status_code == 404
        assert http.get("/v1/openapi.json").json()["info"]["title"] == "aigentflow"
        assert "server" not in listed.headers
        busy = aigentflow("serve", "--port", port, cwd=sample_repo, timeout=60)
        assert busy.returncode == 2 and f"port {port} on 127.0.0.1 is in use" in busy.stderr and "--port" in busy.stderr
    log = output.read_text()
    with serving(sample_repo, port=int(port)) as (again, _):  # at once: its old connections do not hold the port
        assert httpx.get(f"{again}/v1/runs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert f"aigentflow API for {sample_repo}: {base}/v1" in log
    assert '"GET /v1/runs HTTP/1.1" 200' in log and '"GET /v1/runs HTTP/1.1" 401' in log
    assert token not in log and token.split("_", 2)[2] not in log and "access_token" not in log
    used = json.loads(aigentflow("tokens", "list", "--json", cwd=sample_repo).stdout)
    assert used[0]["last_used_at"] is not None


def test_serve_refuses_a_bad_port_and_a_bad_set(sample_repo: Path) -> None:
    port = aigentflow("serve", "--port", "70000", cwd=sample_repo, timeout=60)
    assert port.returncode == 2 and "is not a TCP port" in port.stderr
    tenant = aigentflow("serve", "--set", "run.tenant=acme", cwd=sample_repo, timeout=60)
    assert tenant.returncode == 2 and "run.tenant" in tenant.stderr
    outside = aigentflow("serve", cwd=sample_repo.parent, timeout=60)
    assert outside.returncode == 2 and "not inside a git repository" in outside.stderr


@pytest.mark.ray
def test_a_run_posted_over_http_is_followed_to_completed(sample_repo: Path, ray_address: str) -> None:
    token = create_token(sample_repo, "acme")
    operator = create_token(sample_repo, "default")
    mine, theirs = {"Authorization": f"Bearer {token}"}, {"Authorization": f"Bearer {operator}"}
    with serving(sample_repo, "--address", ray_address) as (base, output), httpx.Client(base_url=base,
                                                                                         timeout=240) as http:
        started = time.monotonic()
        posted = http.post("/v1/runs", headers=mine, json={"request": DEMO_REQUEST, "model": "replay/demo"})
        assert posted.status_code == 202, posted.text
        run_id = posted.json()["id"]
        assert posted.headers["location"] == f"/v1/runs/{run_id}" and posted.json()["events"].endswith("/events")
        recorded_after = time.monotonic() - started
        states, since, terminal = [], 0, False
        deadline = time.monotonic() + 300
        while not terminal:
            assert time.monotonic() < deadline, states
            page = http.get(f"/v1/runs/{run_id}/events", params={"since": since, "wait": 30}, headers=mine).json()
            states += [e["to_state"] for e in page["events"]]
            since, terminal = page["next"], page["terminal"]
        assert states[0] == "CREATED" and "ANALYZING" in states and states[-1] == "COMPLETED", states
        detail = http.get(f"/v1/runs/{run_id}", headers=mine).json()
        assert detail["state"] == "COMPLETED" and detail["model"] == "replay/demo"
        assert detail["steps"] and all(s["status"] == "completed" for s in detail["steps"])
        assert detail["costs"]["model_calls"] == detail["model_calls"] > 0
        assert [r["id"] for r in http.get("/v1/runs", headers=mine).json()["runs"]] == [run_id]
        audit = http.get(f"/v1/runs/{run_id}/audit", headers=mine).json()["entries"]
        assert {"run.created", "api.run.submitted"} <= {e["event"] for e in audit}
        assert [e["data"] for e in audit if e["event"] == "api.run.submitted"] == [{"token_id": token.split("_")[1]}]
        assert http.get(f"/v1/runs/{run_id}", headers=theirs).status_code == 404
        assert http.get("/v1/runs", headers=theirs).json() == {"runs": [], "count": 0}
    assert (sample_repo / ".aigentflow" / "runs" / run_id / "research.md").is_file()
    assert token not in output.read_text()
    print(json.dumps({"recorded_after_s": round(recorded_after, 2), "states": len(states)}))
