"""Faults a cluster has: an agent actor (or the Model Gateway) killed in the middle of its call is
restarted by Ray, the call is retried under the same step key, and the run completes with no step
recorded twice."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import aigentflow, cli_env
from tests.multinode_driver import write_slow_cassette
from tests.test_cli_run import _start_run, _wait_for_state, status_of

pytestmark = pytest.mark.ray

KILL_AGENT = """
import os, signal, sys
from aigentflow.cluster.env import prepare_ray_environment
prepare_ray_environment(sys.argv[1])
import ray
ray.init(address=sys.argv[1], namespace="aigentflow", log_to_driver=False)
from actors.factory import agent_actor_name
agent = ray.get_actor(agent_actor_name(sys.argv[2]), namespace="aigentflow")
if sys.argv[3] == "ray.kill":
    ray.kill(agent, no_restart=False)
elif sys.argv[3] == "for good":
    ray.kill(agent, no_restart=True)
else:
    pid = ray.get(agent.__ray_call__.remote(lambda self: os.getpid()))
    os.kill(pid, signal.SIGKILL)
print("killed")
"""


@pytest.mark.parametrize("role, how", [("architect", "ray.kill"), ("architect", "SIGKILL"),
                                       ("model_gateway", "SIGKILL")])
def test_agent_killed_mid_call_is_restarted_and_the_step_retried_once(
    sample_repo: Path, ray_address: str, role: str, how: str
) -> None:
    """The architect waits on its model call in the Model Gateway: killing either one mid-call."""
    process = _start_run(sample_repo, ray_address, write_slow_cassette(sample_repo, delay_s=4))
    run = _wait_for_state(sample_repo, "ARCHITECTING")
    time.sleep(1)  # the architect's model call is under way
    killer = subprocess.run([sys.executable, "-c", KILL_AGENT, ray_address, role, how],
                            capture_output=True, text=True, timeout=60, env=cli_env(), check=False)
    assert "killed" in killer.stdout, killer.stderr
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stdout + stderr
    report = status_of(sample_repo, run["id"])
    assert report["run"]["state"] == "COMPLETED"
    assert sorted((s["step"], s["attempt"], s["status"]) for s in report["steps"]) == [
        ("analyze", 1, "completed"), ("architect", 1, "completed"), ("plan", 1, "completed")]
    assert sorted(a["name"] for a in report["artifacts"]).count("architecture.md") == 1
    from datetime import datetime

    architect = next(s for s in report["steps"] if s["step"] == "architect")
    took = (datetime.fromisoformat(architect["finished_at"]) - datetime.fromisoformat(architect["started_at"]))
    assert took.total_seconds() > 4.5, "the killed call was retried in full after the restart"
    run_dir = sample_repo / ".aigentflow" / "runs" / run["id"]
    assert "Store due dates as ISO strings" in (run_dir / "architecture.md").read_text()


def test_an_agent_killed_for_good_between_runs_is_started_anew_by_the_next_run(
    sample_repo: Path, ray_address: str
) -> None:
    """The node's run host keeps its agents' handles from run to run; one whose actor is gone for good
    (killed without restarts) is asked for again by name, and the next run completes."""
    from tests.conftest import DEMO_REQUEST

    def run_once() -> dict:
        result = aigentflow("run", DEMO_REQUEST, "--model", "replay/demo", "--address", ray_address, cwd=sample_repo)
        assert result.returncode == 0, result.stdout + result.stderr
        return status_of(sample_repo, json.loads(aigentflow("runs", "--json", cwd=sample_repo).stdout)[0]["id"])

    assert run_once()["run"]["state"] == "COMPLETED"
    killer = subprocess.run([sys.executable, "-c", KILL_AGENT, ray_address, "architect", "for good"],
                            capture_output=True, text=True, timeout=60, env=cli_env(), check=False)
    assert "killed" in killer.stdout, killer.stderr
    second = run_once()
    assert second["run"]["state"] == "COMPLETED"
    assert {s["step"]: s["status"] for s in second["steps"]}["architect"] == "completed"


def test_a_step_that_outlives_its_timeout_fails_clearly(sample_repo: Path, ray_address: str) -> None:
    from tests.conftest import DEMO_REQUEST, aigentflow

    model = write_slow_cassette(sample_repo, delay_s=8)
    result = aigentflow("run", DEMO_REQUEST, "--model", model, "--address", ray_address,
                        "--set", "run.step_timeout_s=2", cwd=sample_repo)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "took longer than run.step_timeout_s (2 s)" in result.stderr
    runs = json.loads(aigentflow("runs", "--json", cwd=sample_repo).stdout)
    report = status_of(sample_repo, runs[0]["id"])
    assert report["run"]["state"] == "FAILED"
    assert {s["step"]: s["status"] for s in report["steps"]}["architect"] == "failed"


def test_agents_that_cannot_start_anywhere_fail_fast_and_leave_the_run_resumable(
    sample_repo: Path, ray_address: str
) -> None:
    from tests.conftest import DEMO_REQUEST, aigentflow

    result = aigentflow("run", DEMO_REQUEST, "--model", "replay/demo", "--address", ray_address,
                        "--set", "run.agent_resource=gpu-node-that-never-came-up",
                        "--set", "run.agent_start_timeout_s=5", cwd=sample_repo, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "did not start within 5 s" in result.stderr and "gpu-node-that-never-came-up" in result.stderr
    runs = json.loads(aigentflow("runs", "--json", cwd=sample_repo).stdout)
    report = status_of(sample_repo, runs[0]["id"])
    assert report["run"]["state"] == "CREATED" and report["steps"] == [], "nothing half-written"


PROBE = """
import json, sys
from aigentflow.cluster.env import prepare_ray_environment
prepare_ray_environment(sys.argv[1])
import ray
ray.init(address=sys.argv[1], namespace="aigentflow", log_to_driver=False)
from actors.factory import agent_actor_name
report = {}
for role in sys.argv[2:]:
    actor = ray.get_actor(agent_actor_name(role), namespace="aigentflow")
    report[role] = ray.get(actor.__ray_call__.remote(lambda self: "litellm" in sys.modules))
report["gateway"] = ray.get(ray.get_actor(agent_actor_name("model_gateway"), namespace="aigentflow").stats.remote())
print(json.dumps(report))
"""


def test_agents_reach_their_model_through_the_gateway_and_never_import_litellm(
    sample_repo: Path, ray_address: str
) -> None:
    process = _start_run(sample_repo, ray_address, "replay/demo")
    stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stdout + stderr
    probe = subprocess.run([sys.executable, "-c", PROBE, ray_address, "analyst", "project_manager", "architect",
                            "model_gateway"], capture_output=True, text=True, timeout=120, env=cli_env(), check=False)
    assert probe.returncode == 0, probe.stderr
    report = json.loads(probe.stdout.strip().splitlines()[-1])
    assert report["analyst"] is False and report["project_manager"] is False and report["architect"] is False
    assert report["model_gateway"] is True
    run = status_of(sample_repo, json.loads(aigentflow("runs", "--json", cwd=sample_repo).stdout)[0]["id"])
    assert report["gateway"]["calls"] >= run["totals"]["model_calls"] >= 3
