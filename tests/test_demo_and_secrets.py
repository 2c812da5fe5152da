"""The newcomer's first command, and the promise that secrets reach no trace, log, store or prompt."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DEMO_REQUEST, aigentflow, cli_env, git

pytestmark = pytest.mark.ray

ENV_CANARY = "sk-canaryOPENAIkey0123456789abcdefABCDEF"
TOKEN_CANARY = "canary-service-token-9f8e7d6c5b4a"
REQUEST_CANARY = "ghp_" + "C4n4ryT0k3n" * 3 + "abc"
FILE_CANARY = "ghp_" + "F1l3C4n4ry" * 3 + "xyz"


def test_demo_runs_end_to_end_offline(tmp_path: Path, user_config: Path) -> None:
    """As a newcomer runs it: no cluster anywhere, so the demo starts its own local Ray."""
    import shutil
    import tempfile

    target = tmp_path / "demo"
    own_tmp = tempfile.mkdtemp(prefix="afdemo-", dir="/tmp")  # no other Ray instance is found there
    try:
        result = aigentflow("demo", "--dir", str(target), cwd=tmp_path, timeout=300,
                            env={k: v for k, v in cli_env(TMPDIR=own_tmp).items() if k != "RAY_ADDRESS"})
    finally:
        shutil.rmtree(own_tmp, ignore_errors=True)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "MERGING -> COMPLETED" in result.stdout and "Started a local Ray instance" in result.stderr + result.stdout
    assert "warning" not in result.stdout, "the shipped cassette matches today's prompts"
    # the feature is implemented for real: tests first, one repaired failure, reviewed, merged into main
    log = subprocess.run(["git", "log", "--format=%s|%(trailers:key=Aigentflow-Agent,valueonly,separator=)", "main"],
                         cwd=target, capture_output=True, text=True, check=True).stdout
    agents = [line.split("|")[1] for line in log.splitlines() if "|" in line and line.split("|")[1]]
    assert agents.count("tester") == 2 and agents.count("bug_fixer") == 1 and agents[0] == "git_agent"
    assert "def overdue" in (target / "src" / "tasks_demo" / "store.py").read_text()
    report = json.loads(aigentflow("status", "--json", cwd=target).stdout)
    tasks = next(s for s in report["steps"] if s["step"] == "build")["output"]["tasks"]
    assert [(t["tdd"]["failed_first"] if "tdd" in t else None, len(t["fix_attempts"]), t["reviews"][-1]["verdict"])
            for t in tasks.values()] == [(True, 0, "approve"), (True, 1, "approve"), (None, 0, "approve")]
    assert report["metrics"]["coverage_delta"] > 0
    runs = json.loads(aigentflow("runs", "--json", cwd=target).stdout)
    assert len(runs) == 1 and runs[0]["state"] == "COMPLETED" and runs[0]["request"] == DEMO_REQUEST
    run_dir = target / ".aigentflow" / "runs" / runs[0]["id"]
    assert str(run_dir) in result.stdout, "the demo says where its outputs are"
    assert "overdue" in (run_dir / "work_breakdown.md").read_text()
    assert "## Decision" not in (run_dir / "architecture.md").read_text()
    sample_tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=target,
                                  capture_output=True, text=True, timeout=120, check=False)
    assert sample_tests.returncode == 0, sample_tests.stdout
    again = aigentflow("demo", "--dir", str(target), cwd=tmp_path)
    assert again.returncode == 2 and "not empty" in again.stderr


def _files_containing(root: Path, needles: list[str]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path}: {n}" for n in needles if n.encode() in data]
    return found


def test_planted_secrets_reach_no_store_trace_output_prompt_or_log(sample_repo: Path, ray_address: str) -> None:
    env = cli_env(OPENAI_API_KEY=ENV_CANARY, MY_SERVICE_TOKEN=TOKEN_CANARY)
    recorded = sample_repo.parent / "prompts-seen.json"
    request = f"{DEMO_REQUEST}. Use the token {REQUEST_CANARY} for the API."
    package_dir = Path(sys.modules["aigentflow"].__file__).parent
    demo_cassette = json.loads(package_dir.joinpath("cassettes", "demo.json").read_text())
    (sample_repo / ".aigentflow" / "cassettes").mkdir(exist_ok=True)
    (sample_repo / ".aigentflow" / "cassettes" / "demo.json").write_text(json.dumps(demo_cassette))
    # A tracked file holding a token: withheld from every prompt (by path, audited), never redacted into one.
    (sample_repo / "deploy_settings.py").write_text(f'GITHUB_TOKEN = "{FILE_CANARY}"\n')
    git(sample_repo, "add", "deploy_settings.py")
    git(sample_repo, "commit", "-qm", "Add deploy settings")
    # Lenient: the planted token makes every prompt one the demo cassette was not recorded for. The demo's
    # flags: the run builds in worktrees, where the developers are shown the project's files.
    from aigentflow.demo import demo_settings

    building = [part for key, value in demo_settings().items() for part in ("--set", f"{key}={value}")]
    result = aigentflow("run", request, "--model", "replay/demo", "--address", ray_address,
                        "--set", "model.replay_lenient=true", "--record", str(recorded), *building,
                        cwd=sample_repo, env=env)
    assert result.returncode == 0, result.stderr + result.stdout
    needles = [ENV_CANARY, TOKEN_CANARY, REQUEST_CANARY]
    assert _files_containing(sample_repo / ".aigentflow", needles) == []
    assert _files_containing(recorded.parent, needles) == [], "the recorded cassette shows what the model saw"
    assert FILE_CANARY not in recorded.read_text(), "the file holding a token reached no prompt"
    audit = json.loads(aigentflow("audit", "--event", "secret.withheld", "--json", cwd=sample_repo, env=env).stdout)
    assert audit and all("deploy_settings.py" in entry["data"]["paths"] for entry in audit), [e["data"] for e in audit]
    assert FILE_CANARY not in json.dumps(audit)
    detected = aigentflow("incidents", "detect", "--json", cwd=sample_repo, env=env)
    assert detected.returncode == 0, detected.stderr
    found = json.loads(aigentflow("incidents", "list", "--rule", "secret-found", "--json", cwd=sample_repo,
                                  env=env).stdout)
    assert [i["severity"] for i in found] == ["SEV4"], "withheld from a prompt: the secret-found incident, SEV4"
    assert not any(n in result.stdout + result.stderr for n in needles)
    report = aigentflow("status", "--json", cwd=sample_repo, env=env)
    assert "[REDACTED]" in json.loads(report.stdout)["run"]["request"]
    ray_logs = Path("/tmp/ray/session_latest/logs")
    if ray_logs.is_dir():
        assert _files_containing(ray_logs, [ENV_CANARY, TOKEN_CANARY]) == []
