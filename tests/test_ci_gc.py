"""`aigentflow ci init|run` and `aigentflow gc` against real repositories, real runs in the store and
real sandboxed commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aigentflow.checks.ci import render_workflow, run_gate
from aigentflow.config.settings import BuildSettings
from aigentflow.gitops.worktrees import Worktrees, commit_all
from aigentflow.store.sqlite import SQLiteRunStore
from tests.conftest import aigentflow, commit_files

PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider"


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "core.hooksPath=/dev/null", *args], cwd=cwd, check=True,
                          capture_output=True, text=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "u", "GIT_AUTHOR_EMAIL": "u@x",
                               "GIT_COMMITTER_NAME": "u", "GIT_COMMITTER_EMAIL": "u@x"}).stdout.strip()


def workflow(repo: Path) -> dict:
    return yaml.safe_load((repo / ".github" / "workflows" / "aigentflow.yml").read_text())


# -- ci init ---------------------------------------------------------------------------------------


def test_ci_init_writes_a_workflow_with_the_test_command_and_refuses_to_overwrite(sample_repo: Path) -> None:
    written = aigentflow("ci", "init", cwd=sample_repo)
    assert written.returncode == 0, written.stderr
    data = workflow(sample_repo)
    assert data["on"] == ["push", "pull_request"]
    steps = data["jobs"]["test"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@")
    assert steps[1]["uses"].startswith("actions/setup-python@")
    assert "pip install -e ." in steps[2]["run"]
    assert steps[-1]["run"] == "python -m pytest"  # detected at `aigentflow init`

    refused = aigentflow("ci", "init", cwd=sample_repo)
    assert refused.returncode == 2 and "already exists" in refused.stderr and "--force" in refused.stderr

    configured = aigentflow("config", "set", "build.test_command", 'pytest -k "not slow"', cwd=sample_repo)
    assert configured.returncode == 0, configured.stderr
    forced = aigentflow("ci", "init", "--force", "--json", cwd=sample_repo)
    assert forced.returncode == 0, forced.stderr
    report = json.loads(forced.stdout)
    assert report["command"] == 'pytest -k "not slow"' and report["command_source"] == "build.test_command"
    assert workflow(sample_repo)["jobs"]["test"]["steps"][-1]["run"] == 'pytest -k "not slow"'


def test_workflow_for_a_javascript_project(tmp_path: Path) -> None:
    repo = commit_files(tmp_path / "web", {"package.json": '{"scripts": {"test": "jest"}}', "package-lock.json": "{}"})
    data = yaml.safe_load(render_workflow(repo, "npm test"))
    steps = data["jobs"]["test"]["steps"]
    assert [s.get("uses", "").split("@")[0] for s in steps[:2]] == ["actions/checkout", "actions/setup-node"]
    assert steps[2]["run"] == "npm ci" and steps[-1]["run"] == "npm test"
    sh(repo, "rm", "-q", "--cached", "package-lock.json")  # on disk, but a clean clone would not have it
    assert yaml.safe_load(render_workflow(repo, "npm test"))["jobs"]["test"]["steps"][2]["run"] == "npm install"
    bare = yaml.safe_load(render_workflow(tmp_path / "nothing", "make check"))["jobs"]["test"]["steps"]
    assert len(bare) == 2 and bare[-1]["run"] == "make check"


@pytest.fixture
def no_tests_repo(tmp_path: Path, user_config: Path) -> Path:
    """An initialised project in which no test command can be detected."""
    repo = tmp_path / "plain"
    repo.mkdir()
    sh(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("just words\n")
    sh(repo, "add", ".")
    sh(repo, "commit", "-qm", "initial")
    assert aigentflow("init", cwd=repo).returncode == 0
    return repo


def test_ci_without_a_test_command_says_how_to_set_one(no_tests_repo: Path) -> None:
    for args in (("ci", "init"), ("ci", "run")):
        result = aigentflow(*args, cwd=no_tests_repo)
        assert result.returncode == 2, (args, result.stderr)
        assert 'aigentflow config set build.test_command "' in result.stderr
    assert not (no_tests_repo / ".github").exists()


# -- ci run ----------------------------------------------------------------------------------------


def test_ci_run_passes_then_fails_when_a_test_breaks(sample_repo: Path) -> None:
    assert aigentflow("config", "set", "build.test_command", PYTEST, cwd=sample_repo).returncode == 0
    passed = aigentflow("ci", "run", cwd=sample_repo)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "CI gate passed" in passed.stdout and "exited 0" in passed.stdout

    test_file = next((sample_repo / "tests").glob("test_*.py"))
    test_file.write_text(test_file.read_text() + "\n\ndef test_broken():\n    assert 1 + 1 == 3\n")
    failed = aigentflow("ci", "run", cwd=sample_repo)
    assert failed.returncode == 1
    assert "test_broken" in failed.stderr and "CI gate failed" in failed.stderr and "exited 1" in failed.stderr
    record = json.loads(aigentflow("ci", "run", "--json", cwd=sample_repo).stdout)
    assert record["passed"] is False and record["exit_code"] == 1 and record["command"] == PYTEST


def test_run_gate_prefers_the_ci_command_and_runs_in_the_given_worktree(sample_repo: Path, tmp_path: Path) -> None:
    scratch = Worktrees(sample_repo).ensure(tmp_path / "scratch", "aigentflow/gate-check", "main").path
    (scratch / "only-here.txt").write_text("x")
    build = BuildSettings(test_command="false", ci_command="test -f only-here.txt", timeout_s=30)
    assert run_gate(sample_repo, build, cwd=scratch).ok
    assert run_gate(sample_repo, build).exit_code == 1
    assert not run_gate(sample_repo, BuildSettings(test_command="false"), cwd=scratch).ok


# -- gc --------------------------------------------------------------------------------------------


def make_run(repo: Path, state: str, *, owner_pid: int | None = None) -> str:
    store = SQLiteRunStore(repo / ".aigentflow" / "state.db")
    try:
        run = store.create_run(project_id=store.get_project()["id"], request=f"a {state} run",
                               model="replay/demo", settings={}, flags={})
        if state != "CREATED":
            store.transition(run.id, expected_version=run.version, to_state=state, return_to=None, event="TEST",
                             terminal=state in ("COMPLETED", "FAILED", "CANCELLED"))
        if owner_pid:
            store.claim(run.id, pid=owner_pid)
        return run.id
    finally:
        store.close()


def with_tasks(repo: Path, run_id: str, *tasks: str) -> dict[str, Path]:
    trees = Worktrees(repo)
    trees.ensure_feature(run_id, "main")
    return {task: trees.ensure_task(run_id, task).path for task in tasks}


def gc(repo: Path, *args: str) -> dict:
    result = aigentflow("gc", "--json", *args, cwd=repo)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def names_of(items: list[dict], run_id: str) -> set[str]:
    return {Path(i["name"]).name if i["kind"] != "branch" else i["name"] for i in items if i["run_id"] == run_id}


def test_gc_removes_finished_and_abandoned_runs_and_keeps_the_others(sample_repo: Path) -> None:
    done = make_run(sample_repo, "COMPLETED")
    resumable = make_run(sample_repo, "BUILDING")
    running = make_run(sample_repo, "COMPLETED", owner_pid=os.getpid())  # its process is still finishing
    failed = make_run(sample_repo, "FAILED")
    abandoned = "250101-000000-dead"
    for run_id in (done, resumable, running, abandoned):
        with_tasks(sample_repo, run_id, "T1")
    failed_trees = with_tasks(sample_repo, failed, "T1", "T2", "T3")
    (failed_trees["T1"] / "work.py").write_text("x = 1\n")
    commit_all(failed_trees["T1"], "T1: work", {"Aigentflow-Run": failed, "Aigentflow-Task": "T1"})
    (failed_trees["T3"] / "notes.txt").write_text("not committed\n")
    trees = Worktrees(sample_repo)
    branches_before = set(trees.run_branches())

    dry = gc(sample_repo, "--dry-run")
    assert dry["dry_run"] and names_of(dry["removed"], done) == {"task-T1", "aigentflow/" + done + "/feature",
                                                                 f"aigentflow/{done}/task/T1"}
    assert set(trees.run_branches()) == branches_before and (trees.dir / done / "task-T1").is_dir()

    report = gc(sample_repo)
    for gone in (done, abandoned):
        assert trees.run_branches(gone) == [] and trees.for_run(gone) == [] and not (trees.dir / gone).exists()
    assert names_of(report["removed"], abandoned) == names_of(dry["removed"], abandoned)
    for kept in (resumable, running):
        assert len(trees.run_branches(kept)) == 2 and len(trees.for_run(kept)) == 1
    reasons = {(i["run_id"], i["kind"]): i["reason"] for i in report["kept"]}
    assert "can be resumed" in reasons[(resumable, "branch")] and "--all" in reasons[(resumable, "branch")]
    assert f"process {os.getpid()}" in reasons[(running, "worktree")]

    # the failed run: its unmerged T1 and its uncommitted T3 are kept, the rest (merged, clean) goes
    assert set(trees.run_branches(failed)) == {f"aigentflow/{failed}/task/T1", f"aigentflow/{failed}/task/T3"}
    assert {Path(e["path"]).name for e in trees.for_run(failed)} == {"task-T1", "task-T3"}
    kept_failed = {i["name"]: i["reason"] for i in report["kept"] if i["run_id"] == failed}
    assert "merged nowhere else" in kept_failed[f"aigentflow/{failed}/task/T1"]
    assert "uncommitted changes" in kept_failed[str(failed_trees["T3"])]

    everything = gc(sample_repo, "--all")
    assert trees.run_branches(failed) == [] and trees.run_branches(resumable) == []
    assert len(trees.run_branches(running)) == 2 and len(trees.for_run(running)) == 1
    assert {i["run_id"] for i in everything["kept"]} == {running}
    assert sh(sample_repo, "status", "--porcelain", "--untracked-files=no") == ""


def test_gc_with_nothing_to_do(sample_repo: Path) -> None:
    result = aigentflow("gc", cwd=sample_repo)
    assert result.returncode == 0 and "Nothing to clean up" in result.stdout
