"""Runs as Ray jobs: `aigentflow submit run` through Ray's JobSubmissionClient (with Ray's token
authentication), then `aigentflow jobs list|logs|stop`, against the session's real Ray head."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import DEMO_REQUEST, aigentflow

pytestmark = pytest.mark.ray


def test_submit_a_run_as_a_job_wait_for_it_and_follow_it(sample_repo: Path, ray_dashboard: str) -> None:
    submitted = aigentflow("submit", "run", DEMO_REQUEST, "--address", ray_dashboard, "--model", "replay/demo",
                           "--wait", "--timeout", "240", cwd=sample_repo, timeout=300)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert "ARCHITECTING -> COMPLETED" in submitted.stdout, "the job's log is printed"
    assert "SUCCEEDED" in submitted.stdout
    runs = json.loads(aigentflow("runs", "--json", cwd=sample_repo).stdout)
    assert len(runs) == 1 and runs[0]["state"] == "COMPLETED", "the job ran in the project's directory"

    listed = aigentflow("jobs", "list", "--address", ray_dashboard, "--json", cwd=sample_repo)
    assert listed.returncode == 0, listed.stderr
    mine = [j for j in json.loads(listed.stdout) if j["metadata"].get("project") == str(sample_repo)]
    assert len(mine) == 1 and mine[0]["status"] == "SUCCEEDED"
    logs = aigentflow("jobs", "logs", mine[0]["job_id"], "--address", ray_dashboard, cwd=sample_repo)
    assert logs.returncode == 0 and runs[0]["id"] in logs.stdout


def test_job_commands_name_what_is_wrong(sample_repo: Path, ray_dashboard: str) -> None:
    unknown = aigentflow("jobs", "logs", "no-such-job", "--address", ray_dashboard, cwd=sample_repo)
    assert unknown.returncode == 2 and "no-such-job" in unknown.stderr and "jobs list" in unknown.stderr
    stop = aigentflow("jobs", "stop", "no-such-job", "--address", ray_dashboard, cwd=sample_repo)
    assert stop.returncode == 2 and "no-such-job" in stop.stderr
    nobody = aigentflow("jobs", "list", "--address", "http://127.0.0.1:1", cwd=sample_repo)
    assert nobody.returncode == 2 and "no Ray job server answers at http://127.0.0.1:1" in nobody.stderr
    not_http = aigentflow("jobs", "list", "--address", "127.0.0.1:6379", cwd=sample_repo)
    assert not_http.returncode == 2 and "dashboard's URL" in not_http.stderr


def test_a_stopped_job_leaves_its_run_paused_and_resume_completes_it(
    sample_repo: Path, ray_address: str, ray_dashboard: str
) -> None:
    import time

    from tests.test_cli_run import _slow_cassette, _wait_for_state, status_of

    model = _slow_cassette(sample_repo, delay_s=30)
    submitted = aigentflow("submit", "run", DEMO_REQUEST, "--address", ray_dashboard, "--model", model,
                           "--json", cwd=sample_repo)
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["job_id"]
    run = _wait_for_state(sample_repo, "PLANNING", timeout=120)
    stopped = aigentflow("jobs", "stop", job_id, "--address", ray_dashboard, cwd=sample_repo)
    assert stopped.returncode == 0 and "stopping" in stopped.stdout
    deadline = time.time() + 60
    while time.time() < deadline and status_of(sample_repo, run["id"])["run"]["state"] != "PAUSED":
        time.sleep(0.5)
    report = status_of(sample_repo, run["id"])
    assert (report["run"]["state"], report["run"]["return_to"]) == ("PAUSED", "PLANNING")
    assert "SIGTERM" in next(t for t in report["transitions"] if t["to_state"] == "PAUSED")["reason"]
    cassette = sample_repo / ".aigentflow" / "cassettes" / "slow.json"
    cassette.write_text(cassette.read_text().replace('"delay_s": 30', '"delay_s": 0'))
    resumed = aigentflow("resume", run["id"], "--address", ray_address, cwd=sample_repo, timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    final = status_of(sample_repo, run["id"])
    assert final["run"]["state"] == "COMPLETED"
    assert sorted((s["step"], s["attempt"]) for s in final["steps"]) == [("analyze", 1), ("architect", 1), ("plan", 1)]


def test_ray_job_submit_runs_jobs_run_py_from_the_working_dir(sample_repo: Path, ray_dashboard: str) -> None:
    """The documented `ray job submit --working-dir . -- python jobs/run.py ...`, with Ray's own CLI."""
    import subprocess
    import sys

    from tests.conftest import cli_env

    checkout = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [str(Path(sys.executable).parent / "ray"), "job", "submit", "--address", ray_dashboard,
         "--working-dir", str(checkout), "--", "python", "jobs/run.py", DEMO_REQUEST,
         "--project", str(sample_repo), "--model", "replay/demo"],
        capture_output=True, text=True, timeout=300, env=cli_env(), cwd=checkout, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ARCHITECTING -> COMPLETED" in result.stdout and "succeeded" in result.stdout.lower()
    runs = json.loads(aigentflow("runs", "--json", cwd=sample_repo).stdout)
    assert len(runs) == 1 and runs[0]["state"] == "COMPLETED"
