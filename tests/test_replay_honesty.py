"""A run never presents answers it did not get: the bundled replay model refuses a request it has no
recording for, a replayed answer costs nothing, and a lenient replay (opt-in) says so in every output.
Real CLI subprocesses on the session's Ray head, real git repositories, real SQLite."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import GIT, aigentflow

pytestmark = pytest.mark.ray

OTHER_REQUEST = "Add a function that reverses a string"


def fresh_repo(tmp_path: Path) -> Path:
    """A new user's repository: one file, one commit, `aigentflow init`."""
    repo = tmp_path / "strings"
    repo.mkdir()
    subprocess.run([*GIT, "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "strings.py").write_text('"""String helpers."""\n')
    subprocess.run([*GIT, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(repo), "commit", "-q", "-m", "Start"], check=True)
    init = aigentflow("init", cwd=repo)
    assert init.returncode == 0, init.stderr
    return repo


def only_run(repo: Path) -> dict:
    listing = aigentflow("runs", "--json", cwd=repo)
    assert listing.returncode == 0, listing.stderr
    [run] = json.loads(listing.stdout)
    return run


def test_a_request_the_bundled_cassette_was_not_recorded_for_fails_at_once(tmp_path: Path, ray_address: str,
                                                                         user_config: Path) -> None:
    repo = fresh_repo(tmp_path)
    result = aigentflow("run", OTHER_REQUEST, "--address", ray_address, cwd=repo)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "COMPLETED" not in result.stdout
    message = result.stderr
    assert "stopped in FAILED" in message and "no recorded answer for this prompt" in message
    assert "'analyst'" in message and "'analyze'" in message and "replay/demo" in message, "names role, step, cassette"
    assert "--model provider/name" in message and "--record" in message, "says what to do"

    run = only_run(repo)
    assert run["state"] == "FAILED"
    run_dir = repo / ".aigentflow" / "runs" / run["id"]
    written = sorted(p.name for p in run_dir.iterdir()) if run_dir.exists() else []
    for name in ("research.md", "work_breakdown.json", "work_breakdown.md", "architecture.md"):
        assert name not in written, f"{name} of another request was written"
    status = json.loads(aigentflow("status", run["id"], "--json", cwd=repo).stdout)
    assert status["run"]["state"] == "FAILED" and status["totals"]["cost_usd"] == 0
    assert [s["step"] for s in status["steps"] if s["status"] == "completed"] == []
    if "summary.md" in written:
        assert "Due dates" not in (run_dir / "summary.md").read_text()


def test_the_demo_request_replays_exactly_and_costs_nothing(sample_repo: Path, ray_address: str) -> None:
    from tests.conftest import DEMO_REQUEST

    result = aigentflow("run", DEMO_REQUEST, "--address", ray_address, cwd=sample_repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "LENIENT" not in result.stdout + result.stderr and "drift" not in result.stdout + result.stderr
    run = only_run(sample_repo)
    status = json.loads(aigentflow("status", run["id"], "--json", cwd=sample_repo).stdout)
    assert status["run"]["state"] == "COMPLETED" and status["replay"] == {"lenient": False, "cassette": "demo"}
    assert status["totals"]["cost_usd"] == 0, "the cassette was recorded with gpt-4o-mini, but nothing was paid here"
    summary = (sample_repo / ".aigentflow" / "runs" / run["id"] / "summary.md").read_text()
    assert "**Cost:** $0.0000" in summary and "LENIENT" not in summary


def test_a_lenient_replay_is_opt_in_and_every_output_says_so(tmp_path: Path, ray_address: str,
                                                             user_config: Path) -> None:
    repo = fresh_repo(tmp_path)
    result = aigentflow("run", OTHER_REQUEST, "--address", ray_address, "--set", "model.replay_lenient=true",
                        cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.count("LENIENT REPLAY") == 2, "said when the run starts and when it ends"
    assert "prompt drift" in result.stdout
    run = only_run(repo)
    run_dir = repo / ".aigentflow" / "runs" / run["id"]
    assert "LENIENT REPLAY" in (run_dir / "summary.md").read_text()
    shown = aigentflow("status", run["id"], cwd=repo)
    assert shown.returncode == 0 and "LENIENT REPLAY" in shown.stdout
    as_json = json.loads(aigentflow("status", run["id"], "--json", cwd=repo).stdout)
    assert as_json["replay"] == {"lenient": True, "cassette": "demo"}
    listing = aigentflow("runs", cwd=repo)
    assert "lenient replay" in listing.stdout


def test_the_removed_strict_setting_is_refused_with_what_replaced_it(sample_repo: Path) -> None:
    result = aigentflow("run", "anything", "--set", "model.replay_strict=true", cwd=sample_repo)
    assert result.returncode == 2
    assert "model.replay_strict" in result.stderr and "model.replay_lenient" in result.stderr
    assert "starting Ray" not in result.stdout
