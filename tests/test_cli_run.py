"""`aigentflow run`, `resume`, `status`, `runs`, `trace` and `admin emergency` as a user runs them:
real subprocesses against the session's real Ray head, on a real git repository."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from importlib import resources
from pathlib import Path

import pytest

from tests.conftest import DEMO_REQUEST, _bin, aigentflow, cli_env

pytestmark = pytest.mark.ray

STABLE_OUTPUTS = ("research.md", "work_breakdown.json", "work_breakdown.md", "architecture.md")


def run_cli(repo: Path, address: str, *args: str, env: dict[str, str] | None = None):
    return aigentflow("run", DEMO_REQUEST, "--model", "replay/demo", "--address", address, *args, cwd=repo, env=env)


def latest_run(repo: Path) -> dict:
    listing = aigentflow("runs", "--json", cwd=repo)
    assert listing.returncode == 0, listing.stderr
    return json.loads(listing.stdout)[0]


def status_of(repo: Path, run_id: str) -> dict:
    result = aigentflow("status", run_id, "--json", cwd=repo)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def outputs(repo: Path, run_id: str) -> dict[str, str]:
    run_dir = repo / ".aigentflow" / "runs" / run_id
    return {name: (run_dir / name).read_text() for name in STABLE_OUTPUTS}


@pytest.fixture(scope="module")
def reference_outputs(ray_address: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The outputs of one uninterrupted run, to compare resumed runs against."""
    from aigentflow.cli.project_cmd import initialise
    from tests.conftest import make_sample_repo

    repo = make_sample_repo(tmp_path_factory.mktemp("reference") / "project")
    initialise(repo)
    result = run_cli(repo, ray_address)
    assert result.returncode == 0, result.stderr + result.stdout
    return outputs(repo, latest_run(repo)["id"])


def test_run_then_status_runs_and_trace(sample_repo: Path, ray_address: str) -> None:
    result = run_cli(sample_repo, ray_address)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "ANALYZING -> PLANNING" in result.stdout and "COMPLETED" in result.stdout
    run = latest_run(sample_repo)
    assert run["state"] == "COMPLETED" and run["tokens"] > 0
    assert run["cost_usd"] == 0, "replayed answers cost nothing"
    assert f".aigentflow/runs/{run['id']}" in result.stdout

    report = status_of(sample_repo, run["id"][:11])
    assert [t["to_state"] for t in report["transitions"]] == [
        "CREATED", "ANALYZING", "PLANNING", "ARCHITECTING", "COMPLETED"]
    assert all(t["at"] for t in report["transitions"])
    assert {s["role"]: s["status"] for s in report["steps"]} == {
        "analyst": "completed", "project_manager": "completed", "architect": "completed"}
    assert report["totals"]["input_tokens"] == sum(s["input_tokens"] for s in report["steps"])
    assert report["totals"]["model_calls"] == 4

    human = aigentflow("status", cwd=sample_repo)
    assert human.returncode == 0 and "COMPLETED" in human.stdout and "project_manager" in human.stdout

    trace = aigentflow("trace", run["id"], "--json", cwd=sample_repo)
    assert trace.returncode == 0, trace.stderr
    names = [s["name"] for s in json.loads(trace.stdout)["spans"]]
    assert "invoke_agent analyst" in names and names.count("chat replay/demo") == 4
    assert "state PLANNING" in names and "invoke_workflow aigentflow" in names


@pytest.mark.parametrize("kill_at", ["engine.transition:1", "engine.step:analyze", "engine.transition:2",
                                     "engine.step:plan", "engine.transition:3", "engine.step:architect"])
def test_kill_9_then_resume_gives_each_output_once_and_the_same_result(
    sample_repo: Path, ray_address: str, reference_outputs: dict[str, str], kill_at: str
) -> None:
    killed = run_cli(sample_repo, ray_address, env=cli_env(AIGENTFLOW_FAULTS=f"kill-driver@{kill_at}"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr + killed.stdout
    run = latest_run(sample_repo)
    assert run["state"] not in ("COMPLETED", "FAILED")

    resumed = aigentflow("resume", run["id"], "--address", ray_address, cwd=sample_repo)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    report = status_of(sample_repo, run["id"])
    assert report["run"]["state"] == "COMPLETED"
    keys = [(s["step"], s["attempt"]) for s in report["steps"]]
    assert sorted(keys) == [("analyze", 1), ("architect", 1), ("plan", 1)], "no step recorded twice"
    names = sorted(a["name"] for a in report["artifacts"])
    assert names == sorted([*STABLE_OUTPUTS, "summary.md"])
    run_dir = sample_repo / ".aigentflow" / "runs" / run["id"]
    assert sorted(p.name for p in run_dir.iterdir()) == names, "no stray or duplicate files"
    assert outputs(sample_repo, run["id"]) == reference_outputs
    assert [t["to_state"] for t in report["transitions"]][-1] == "COMPLETED"


def _slow_cassette(repo: Path, delay_s: float) -> str:
    """The demo cassette with a slow last model call in the plan step, so a signal lands during it."""
    shipped = json.loads((resources.files("aigentflow") / "cassettes" / "demo.json").read_text())
    for entry in shipped["entries"]:
        if entry["role"] == "project_manager" and entry["attempt"] == 2:
            entry["delay_s"] = delay_s
    target = repo / ".aigentflow" / "cassettes" / "slow.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(shipped))
    return "replay/slow"


def _start_run(repo: Path, address: str, model: str) -> subprocess.Popen[str]:
    return subprocess.Popen([_bin("aigentflow"), "run", DEMO_REQUEST, "--model", model, "--address", address],
                            cwd=repo, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_state(repo: Path, state: str, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        listing = aigentflow("runs", "--json", cwd=repo)
        runs = json.loads(listing.stdout) if listing.returncode == 0 else []
        if runs and runs[0]["state"] == state:
            return runs[0]
        time.sleep(0.3)
    raise AssertionError(f"the run never reached {state}")


def test_ctrl_c_pauses_at_the_step_boundary_and_resume_completes(sample_repo: Path, ray_address: str) -> None:
    model = _slow_cassette(sample_repo, delay_s=8)
    process = _start_run(sample_repo, ray_address, model)
    run = _wait_for_state(sample_repo, "PLANNING")
    time.sleep(2)  # the plan step's last model call is under way
    live = aigentflow("trace", run["id"], "--json", cwd=sample_repo)
    assert live.returncode == 0, "the trace is readable while the run writes it"
    assert "invoke_agent analyst" in [s["name"] for s in json.loads(live.stdout)["spans"]]
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stdout + stderr
    assert f"aigentflow resume {run['id']}" in stderr
    report = status_of(sample_repo, run["id"])
    assert report["run"]["state"] == "PAUSED"
    assert report["run"]["return_to"] == "ARCHITECTING", "the running step finished before pausing"
    resumed = aigentflow("resume", run["id"], "--address", ray_address, cwd=sample_repo)
    assert resumed.returncode == 0, resumed.stderr
    assert status_of(sample_repo, run["id"])["run"]["state"] == "COMPLETED"


def test_second_ctrl_c_stops_now_and_the_step_is_retried_under_its_key(sample_repo: Path, ray_address: str) -> None:
    model = _slow_cassette(sample_repo, delay_s=30)
    process = _start_run(sample_repo, ray_address, model)
    run = _wait_for_state(sample_repo, "PLANNING")
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stdout + stderr
    report = status_of(sample_repo, run["id"])
    assert (report["run"]["state"], report["run"]["return_to"]) == ("PAUSED", "PLANNING")
    resumed = aigentflow("resume", run["id"], "--address", ray_address, cwd=sample_repo, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    report = status_of(sample_repo, run["id"])
    assert report["run"]["state"] == "COMPLETED"
    assert sorted((s["step"], s["attempt"]) for s in report["steps"]) == [
        ("analyze", 1), ("architect", 1), ("plan", 1)]


def test_a_driver_killed_outright_leaves_the_run_paused_by_its_host_and_resume_completes(
    sample_repo: Path, ray_address: str
) -> None:
    """The run lives on in the node's run host after `kill -9` of its driver: the host finds the driver
    gone at the run's next check and pauses it, unclaimed, so `aigentflow resume` continues it."""
    model = _slow_cassette(sample_repo, delay_s=4)
    process = _start_run(sample_repo, ray_address, model)
    run = _wait_for_state(sample_repo, "PLANNING")
    process.kill()
    process.communicate(timeout=30)
    _wait_for_state(sample_repo, "PAUSED", timeout=60)
    report = status_of(sample_repo, run["id"])
    assert report["run"]["owner_pid"] is None, "nobody claims the run any more"
    paused = next(t for t in report["transitions"] if t["to_state"] == "PAUSED")
    assert f"driver (process {process.pid}) is gone" in paused["reason"]
    resumed = aigentflow("resume", run["id"], "--address", ray_address, cwd=sample_repo, timeout=120)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    report = status_of(sample_repo, run["id"])
    assert report["run"]["state"] == "COMPLETED"
    completed = [s["step"] for s in report["steps"] if s["status"] == "completed"]
    assert sorted(completed) == ["analyze", "architect", "plan"], "no step completed twice"


def test_emergency_pause_all_persists_and_blocks_until_lifted(sample_repo: Path, ray_address: str) -> None:
    on = aigentflow("admin", "emergency", "--pause-all", cwd=sample_repo)
    assert on.returncode == 0 and "ON" in on.stdout
    stopped = run_cli(sample_repo, ray_address)
    assert stopped.returncode == 3, stopped.stderr + stopped.stdout
    assert "pause-all" in stopped.stderr
    run = latest_run(sample_repo)
    assert run["state"] == "PAUSED"
    report = status_of(sample_repo, run["id"])
    assert report["emergency_pause_all"] is True and report["steps"] == []
    refused = aigentflow("resume", run["id"], "--address", ray_address, cwd=sample_repo)
    assert refused.returncode == 2 and "--resume-all" in refused.stderr
    assert aigentflow("admin", "emergency", "--resume-all", cwd=sample_repo).returncode == 0
    resumed = aigentflow("resume", run["id"], "--address", ray_address, cwd=sample_repo)
    assert resumed.returncode == 0, resumed.stderr
    audit_events = [a for a in status_of(sample_repo, run["id"])["transitions"] if a["to_state"] == "PAUSED"]
    assert audit_events and "pause-all" in audit_events[0]["reason"]


def test_a_failing_model_step_exits_1_and_status_shows_why(sample_repo: Path, ray_address: str) -> None:
    cassette = json.loads((resources.files("aigentflow") / "cassettes" / "demo.json").read_text())
    cassette["entries"] = [e for e in cassette["entries"] if e["role"] != "architect"]
    target = sample_repo / ".aigentflow" / "cassettes" / "partial.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(cassette))
    result = aigentflow("run", DEMO_REQUEST, "--model", "replay/partial", "--address", ray_address, cwd=sample_repo)
    assert result.returncode == 1
    assert "no recorded answer" in result.stderr and "architect" in result.stderr
    run = latest_run(sample_repo)
    report = status_of(sample_repo, run["id"])
    assert report["run"]["state"] == "FAILED" and "architect" in report["run"]["error"]
    assert (sample_repo / ".aigentflow" / "runs" / run["id"] / "work_breakdown.json").exists()


def test_runs_of_two_projects_at_once_share_the_host_and_one_failing_leaves_the_other_alone(
    sample_repo: Path, ray_address: str, tmp_path: Path
) -> None:
    from aigentflow.cli.project_cmd import initialise
    from tests.conftest import make_sample_repo

    other = make_sample_repo(tmp_path / "other")
    initialise(other)
    cassette = json.loads((resources.files("aigentflow") / "cassettes" / "demo.json").read_text())
    cassette["entries"] = [e for e in cassette["entries"] if e["role"] != "architect"]
    target = other / ".aigentflow" / "cassettes" / "partial.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(cassette))
    slow = _start_run(sample_repo, ray_address, _slow_cassette(sample_repo, delay_s=10))
    _wait_for_state(sample_repo, "PLANNING")
    failing = _start_run(other, ray_address, "replay/partial")
    _, failing_err = failing.communicate(timeout=120)
    assert failing.returncode == 1 and "no recorded answer" in failing_err
    assert latest_run(sample_repo)["state"] in ("PLANNING", "ARCHITECTING"), "the slow run is still going"
    stdout, stderr = slow.communicate(timeout=120)
    assert slow.returncode == 0, stdout + stderr
    done, failed = latest_run(sample_repo), latest_run(other)
    assert (done["state"], failed["state"]) == ("COMPLETED", "FAILED")
    assert outputs(sample_repo, done["id"])["architecture.md"]
    assert not (other / ".aigentflow" / "runs" / failed["id"] / "architecture.md").exists()
    assert not (sample_repo / ".aigentflow" / "runs" / failed["id"]).exists(), "each run writes its own project"


def test_a_run_shows_in_the_prometheus_metrics_ray_exports(
    sample_repo: Path, ray_address: str, ray_metrics: str,
) -> None:
    import re
    import urllib.request

    assert run_cli(sample_repo, ray_address).returncode == 0
    wanted = {
        "agent call": r'ray_aigentflow_agent_calls_total\{[^}]*outcome="ok"[^}]*role="project_manager"[^}]*\} (\d+)',
        "tokens": r'ray_aigentflow_model_tokens_total\{[^}]*direction="input"[^}]*model="replay/demo"[^}]*\} (\d+)',
        "finished": r'ray_aigentflow_runs_finished_total\{[^}]*state="COMPLETED"[^}]*\} (\d+)',
        "transition": r'ray_aigentflow_run_transitions_total\{[^}]*from_state="PLANNING"[^}]*to_state="ARCHITECTING"',
    }
    deadline, found = time.time() + 60, {}
    while time.time() < deadline and len(found) < len(wanted):
        with urllib.request.urlopen(ray_metrics, timeout=10) as response:
            text = response.read().decode()
        found = {name: m for name, pattern in wanted.items() if (m := re.search(pattern, text))}
        time.sleep(1)
    assert set(found) == set(wanted), f"missing from {ray_metrics}: {set(wanted) - set(found)}"
    input_tokens = sum(float(m.group(1)) for m in re.finditer(wanted["tokens"], text))  # one series per worker
    assert input_tokens >= 13320, "at least this run's input tokens are counted"
