"""A node of a real multi-node Ray cluster is lost while an agent on it is in the middle of its step:
Ray restarts the agent on the surviving worker, the step is retried, and the run completes with one
record per step and the same outputs as a run that saw no fault.

The cluster (a head and two workers offering the ``agents`` resource, all on 127.0.0.1) lives in a
subprocess, ``tests/multinode_driver.py``: this pytest process shares the session's Ray head and
must not start Ray itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import aigentflow, cli_env
from tests.multinode_driver import ARCHITECT_DELAY_S, COMPARED_OUTPUTS, kill_session

pytestmark = pytest.mark.ray

DRIVER = Path(__file__).with_name("multinode_driver.py")
DRIVER_TIME_LIMIT_S = 120
ONE_RECORD_PER_STEP = [("analyze", 1, "completed"), ("architect", 1, "completed"), ("plan", 1, "completed")]

def run_driver(workdir: Path, removal: str, scenario: str = "agent") -> dict:
    """Run the driver in a session of its own; returns its JSON report. Kills whatever it leaves behind."""
    process = subprocess.Popen(
        [sys.executable, str(DRIVER), str(workdir), "--removal", removal, "--scenario", scenario,
         "--time-limit-s", str(DRIVER_TIME_LIMIT_S)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(), start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=DRIVER_TIME_LIMIT_S + 30)
    except subprocess.TimeoutExpired:
        kill_session(process.pid)
        stdout, stderr = process.communicate()
        pytest.fail(f"the multi-node driver did not finish in {DRIVER_TIME_LIMIT_S + 30} s: {stderr[-3000:]}")
    finally:
        kill_session(process.pid)  # any Ray process of that cluster still alive
    reports = [line for line in stdout.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not reports:  # the harness broke: not the outcome under test
        pytest.fail(f"driver exited {process.returncode} with no report: {stdout[-1000:]} {stderr[-4000:]}")
    return json.loads(reports[-1])


@pytest.mark.parametrize("removal", ["graceful", "crash"])
def test_a_run_survives_losing_the_node_of_its_running_agent(
    tmp_path: Path, user_config: Path, removal: str
) -> None:
    report = run_driver(tmp_path / "w", removal)
    reference = report["reference"]
    assert reference["state"] == "COMPLETED", reference["error"]
    assert sorted(reference["outputs"]) == sorted(COMPARED_OUTPUTS)

    assert report["state"] == "COMPLETED", report["error"]
    assert report["architect_node_after"] not in (None, report["removed_node"]), \
        "the architect was restarted on the surviving worker"
    assert sorted((s["step"], s["attempt"], s["status"]) for s in report["steps"]) == ONE_RECORD_PER_STEP
    assert report["outputs"] == reference["outputs"], "the faulted run wrote the same outputs"

    repo = Path(report["repo"])
    status = aigentflow("status", report["run_id"], "--json", cwd=repo)
    assert status.returncode == 0, status.stderr
    stored = json.loads(status.stdout)
    assert stored["run"]["state"] == "COMPLETED"
    assert [t["to_state"] for t in stored["transitions"]] == [
        "CREATED", "ANALYZING", "PLANNING", "ARCHITECTING", "COMPLETED"]
    assert sorted((s["step"], s["attempt"], s["status"]) for s in stored["steps"]) == ONE_RECORD_PER_STEP
    assert [a["name"] for a in stored["artifacts"]].count("architecture.md") == 1
    architect = next(s for s in stored["steps"] if s["step"] == "architect")
    took = datetime.fromisoformat(architect["finished_at"]) - datetime.fromisoformat(architect["started_at"])
    assert took.total_seconds() > ARCHITECT_DELAY_S, "the interrupted model call was made again in full"


@pytest.mark.parametrize("removal", ["none", "crash"])
def test_build_tasks_on_workers_without_the_repository_travel_as_bundles(
    tmp_path: Path, user_config: Path, removal: str
) -> None:
    """The repository is on the head's node; build tasks need the workers' ``builder`` resource, so each
    gets its branch as a bundle and sends its commits back. A worker crashing under a task's tests
    costs a retry on the other worker, not the run."""
    from tests.multinode_driver import BUILD_TASKS
    from tests.worktree_project import git

    report = run_driver(tmp_path / "w", removal, scenario="build")
    assert report["state"] == "COMPLETED", report["error"]
    tasks = report["tasks"]
    assert sorted(tasks) == [f"T{i}" for i in range(1, BUILD_TASKS + 1)]
    for task in tasks.values():
        assert task["status"] == "passed" and task["merged"] and task["remote"]
        assert task["node_id"] != report["head_node"] and task["node_id"] != report["removed_node"]
    repo = Path(report["repo"])
    assert all((repo / "calc" / f"mod_{i}.py").exists() for i in range(1, BUILD_TASKS + 1))
    on_main = git(repo, "log", "--format=%(trailers:key=Aigentflow-Task,valueonly)", "main").split()
    assert sorted(set(on_main)) == [f"T{i}" for i in range(1, BUILD_TASKS + 1)]
