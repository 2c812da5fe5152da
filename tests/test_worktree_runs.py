"""Runs that build in parallel worktrees and merge, as a user runs them: `aigentflow run` against the
session's Ray head, a real git repository, real sandboxed test commands, replayed models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigentflow.gitops import names
from aigentflow.store.sqlite import SQLiteRunStore
from tests.conftest import aigentflow, cli_env
from tests.worktree_project import (
    TEST_COMMAND,
    both_functions,
    conflicting,
    eight_tasks,
    git,
    make_project,
    worktree_flags,
)

pytestmark = pytest.mark.ray

REQUEST = "Add value functions to calc"


@pytest.fixture
def project(tmp_path: Path, user_config: Path) -> Path:
    return make_project(tmp_path / "calc")


def run(project: Path, address: str, model: str, *extra: str, env: dict[str, str] | None = None):
    return aigentflow("run", REQUEST, "--model", model, "--address", address, *worktree_flags(), *extra,
                      cwd=project, env=env, timeout=300)


def the_run(project: Path) -> tuple[dict, dict[str, dict]]:
    store = SQLiteRunStore(project / ".aigentflow" / "state.db", readonly=True)
    try:
        record = store.list_runs(1)[0]
        steps = {f"{s.step}#{s.attempt}": {"status": s.status, "output": s.output, "error": s.error}
                 for s in store.steps(record.id)}
        return record.to_dict(), steps
    finally:
        store.close()


def trailers(project: Path, ref: str) -> list[dict[str, str]]:
    out = git(project, "log", "--format=%H%x00%(trailers:only,unfold)%x01", ref)
    result = []
    for chunk in out.split("\x01"):
        sha, _, text = chunk.strip().partition("\x00")
        if sha:
            result.append({"sha": sha, **{k.strip(): v.strip() for k, _, v in
                                          (line.partition(":") for line in text.splitlines()) if k}})
    return result


def test_eight_parallel_tasks_each_in_a_worktree_all_merged_with_history(project: Path, ray_address: str) -> None:
    model = eight_tasks(project.parent / "eight.json")
    # the test run leaves a different file behind in each worktree (as bytecode caches do): not the
    # developer's work, never committed, so it cannot make parallel tasks conflict
    leaves_junk = f"{TEST_COMMAND} && date +%N > run-artifact.txt"
    result = run(project, ray_address, model, "--set", f"build.test_command={leaves_junk}")
    assert result.returncode == 0, result.stderr + result.stdout
    record, steps = the_run(project)
    assert record["state"] == "COMPLETED"
    assert git(project, "log", "--all", "--format=%h", "--", "run-artifact.txt") == ""
    build = steps["build#1"]["output"]
    assert build["overlaps"] == [] and build["conflicts"] == []
    tasks = build["tasks"]
    assert sorted(tasks) == [f"T{i}" for i in range(1, 9)]
    assert all(t["status"] == "passed" and t["merged"] for t in tasks.values())
    # each task had its own worktree under .aigentflow/worktrees/<run>/ on its own branch
    worktrees = {t["worktree"] for t in tasks.values()}
    assert len(worktrees) == 8
    assert all(Path(w).is_relative_to(project / ".aigentflow" / "worktrees" / record["id"]) for w in worktrees)
    assert all(t["tests"]["isolation"] for t in tasks.values())
    # they ran side by side: some build tasks overlapped in time
    spans = sorted((t["started_ns"], t["ended_ns"]) for t in tasks.values())
    assert any(spans[i + 1][0] < spans[i][1] for i in range(len(spans) - 1))
    # T5 needs T1: it started after T1 was built, from a feature head that had T1
    assert tasks["T5"]["started_ns"] >= tasks["T1"]["ended_ns"]
    # history: every task commit is on main, with the run, task and agent as trailers
    on_main = trailers(project, "main")
    task_commits = {c["Aigentflow-Task"]: c for c in on_main if "Aigentflow-Task" in c and len(
        git(project, "log", "-1", "--format=%P", c["sha"]).split()) == 1}
    assert sorted(task_commits) == [f"T{i}" for i in range(1, 9)]
    assert all(c["Aigentflow-Run"] == record["id"] and c["Aigentflow-Agent"] == "backend_developer"
               for c in task_commits.values())
    head = on_main[0]
    assert head["Aigentflow-Run"] == record["id"] and head.get("Aigentflow-Agent") == "git_agent"
    assert git(project, "rev-parse", "main^2") == git(project, "rev-parse", names.feature_branch(record["id"]))
    # the user's checkout moved with main: the files are there, the tree is clean, the tests pass
    assert git(project, "status", "--porcelain", "--untracked-files=no") == ""
    assert all((project / "calc" / f"mod_{i}.py").exists() for i in range(1, 9))
    import subprocess

    tests = subprocess.run(TEST_COMMAND.split(), cwd=project, capture_output=True, text=True, check=False)
    assert tests.returncode == 0 and "Ran 9 tests" in tests.stderr, tests.stderr
    report = (project / ".aigentflow" / "runs" / record["id"] / "build_report.md").read_text()
    assert "| T8 | passed | yes |" in report
    assert steps["merge#1"]["output"]["merge"]["kind"] == "merge"


def test_conflict_predicted_then_resolved_by_the_resolver_with_tests_passing(project: Path,
                                                                             ray_address: str) -> None:
    model = conflicting(project.parent / "resolved.json", both_functions())
    gate = f"{TEST_COMMAND} && test -f tests/test_two.py"
    result = run(project, ray_address, model, "--set", f"build.ci_command={gate}")
    assert result.returncode == 0, result.stderr + result.stdout
    record, steps = the_run(project)
    build = steps["build#1"]["output"]
    [conflict] = build["conflicts"]
    assert conflict["paths"] == ["calc/app.py"] and conflict["source"].endswith("/task/T2")
    assert conflict["resolution"] == "resolved" and conflict["tests"]["ok"]
    assert any("def one" in h["ours"] and "def two" in h["theirs"] for h in conflict["hunks"])
    # the overlap was seen as soon as T2 came back, before any merge of it
    assert build["overlaps"] == [{"path": "calc/app.py", "tasks": ["T1", "T2"], "conflict_predicted": True}]
    assert record["state"] == "COMPLETED"
    app = (project / "calc" / "app.py").read_text()
    assert "def one" in app and "def two" in app and "<<<<<<<" not in app
    resolved = [c for c in trailers(project, "main") if c.get("Aigentflow-Agent") == "merge_resolver"]
    assert len(resolved) == 1
    # the project's CI command ran on the merged result before main moved
    merge = steps["merge#1"]["output"]
    assert merge["gate"]["ok"] and merge["gate"]["command"] == gate and merge["gate"]["exit_code"] == 0


def test_a_resolver_that_claims_success_without_passing_tests_never_merges(project: Path,
                                                                           ray_address: str) -> None:
    only_one = 'def greet():\n    return "hello"\n\n\ndef one():\n    return 1\n'  # drops two(): its test fails
    model = conflicting(project.parent / "bad.json", only_one)
    main_before = git(project, "rev-parse", "main")
    result = run(project, ray_address, model)
    assert result.returncode != 0
    record, steps = the_run(project)
    assert record["state"] == "AWAITING_APPROVAL"
    build = steps["build#1"]
    assert build["status"] == "failed" and "conflicts in calc/app.py" in build["error"]
    evidence = json.loads((project / ".aigentflow" / "runs" / record["id"] / "evidence.json").read_text())
    [conflict] = evidence["conflicts"]
    assert conflict["resolver_claimed"] is True and conflict["resolution"] == "escalated"
    assert not conflict["tests"]["ok"] and conflict["hunks"]
    # nothing of T2 reached the feature branch or main
    feature = names.feature_branch(record["id"])
    assert "def two" not in git(project, "show", f"{feature}:calc/app.py")
    assert git(project, "rev-parse", "main") == main_before
    status = aigentflow("status", record["id"], cwd=project)
    assert "AWAITING_APPROVAL" in status.stdout


@pytest.mark.parametrize("killed", ["git_agent", "driver"])
def test_kill_9_during_the_merge_leaves_a_consistent_repository(project: Path, ray_address: str,
                                                                killed: str) -> None:
    """git_agent: the process moving main dies between moving the checkout and the ref; Ray restarts it,
    the retried merge finds the journal and finishes the move. driver: `aigentflow run` dies after the
    merge, before the step is committed; `resume` redoes the step, which finds the merge done."""
    model = eight_tasks(project.parent / "eight.json")
    env = cli_env(AIGENTFLOW_FAULTS="kill-self@merge.after-sync" if killed == "git_agent" else
                  "kill-driver@engine.step:merge")
    result = run(project, ray_address, model, env=env)
    record, _ = the_run(project)
    if killed == "git_agent":
        assert result.returncode == 0, result.stderr + result.stdout
        # the Git Agent did die mid-move: main's reflog shows the move finished by recovery
        assert "aigentflow merge (recovered)" in git(project, "reflog", "show", "--format=%gs", "main")
    else:
        assert result.returncode == -9 and record["state"] == "MERGING"
        resumed = aigentflow("resume", record["id"], "--address", ray_address, cwd=project, timeout=300)
        assert resumed.returncode == 0, resumed.stderr + resumed.stdout
        record, steps = the_run(project)
        assert steps["merge#1"]["output"]["merge"]["kind"] == "up-to-date"
    assert record["state"] == "COMPLETED"
    assert not (project / ".git" / "aigentflow-merge.json").exists()
    assert git(project, "status", "--porcelain", "--untracked-files=no") == ""
    assert git(project, "rev-parse", "main^2") == git(project, "rev-parse", names.feature_branch(record["id"]))
    assert git(project, "log", "--merges", "--format=%s", "main").count("Merge aigentflow/") == 1
    assert all((project / "calc" / f"mod_{i}.py").exists() for i in range(1, 9))


def test_tasks_on_a_node_without_the_repository_travel_as_bundles(project: Path, ray_address: str) -> None:
    model = eight_tasks(project.parent / "eight.json")
    result = run(project, ray_address, model, env=cli_env(AIGENTFLOW_FAULTS="build.force-remote"))
    assert result.returncode == 0, result.stderr + result.stdout
    record, steps = the_run(project)
    tasks = steps["build#1"]["output"]["tasks"]
    assert all(t["remote"] and t["merged"] for t in tasks.values())
    # the commits made in the scratch clones are the ones on the task branches
    for task_id, task in tasks.items():
        assert git(project, "rev-parse", names.task_branch(record["id"], task_id)) == task["commit"]
    assert all((project / "calc" / f"mod_{i}.py").exists() for i in range(1, 9))


def test_after_a_fix_resume_reattaches_the_worktrees_and_finishes(project: Path, ray_address: str) -> None:
    cassette_path = project.parent / "fixable.json"
    model = conflicting(cassette_path, None)  # the resolver gives up: the run waits for a human
    assert run(project, ray_address, model).returncode != 0
    record, _ = the_run(project)
    assert record["state"] == "AWAITING_APPROVAL"
    t2_commit = git(project, "rev-parse", names.task_branch(record["id"], "T2"))
    conflicting(cassette_path, both_functions())  # the human gives the resolver a better answer
    resumed = aigentflow("resume", record["id"], "--address", ray_address, cwd=project, timeout=300)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    record, steps = the_run(project)
    assert record["state"] == "COMPLETED"
    build = [s for key, s in steps.items() if key.startswith("build#")]
    assert [s["status"] for s in build] == ["completed"]  # the step was retried under its key
    retry = build[0]["output"]["tasks"]
    assert retry["T1"]["detail"] == "merged before this attempt"
    assert retry["T2"]["reattached"] is True and retry["T2"]["commit"] == t2_commit
    assert "def two" in (project / "calc" / "app.py").read_text()


def test_hostile_edits_are_refused_and_planted_hooks_never_run(project: Path, ray_address: str,
                                                               tmp_path: Path) -> None:
    from tests.worktree_project import cassette, developer, module_files, task

    marker = tmp_path / "hook-ran"
    for hook in ("pre-commit", "post-commit", "post-checkout", "post-merge", "reference-transaction"):
        script = project / ".git" / "hooks" / hook
        script.write_text(f"#!/bin/sh\necho {hook} >> {marker}\n")
        script.chmod(0o755)
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "link").symlink_to(outside)
    git(project, "add", "link")
    git(project, "-c", "user.name=u", "-c", "user.email=u@x", "-c", "core.hooksPath=/dev/null", "commit", "-qm",
        "a link out")
    tasks = [task(f"T{i}", f"t{i}") for i in range(1, 5)]
    model = cassette(project.parent / "hostile.json", tasks, [
        developer("T1", {"../outside.txt": "escaped\n"}),
        developer("T2", {".git/hooks/post-merge": "#!/bin/sh\ntouch /tmp/pwned\n"}),
        developer("T3", {"link/pwned.txt": "through a symlink\n"}),
        developer("T4", module_files(4)),
    ])
    result = run(project, ray_address, model)
    assert result.returncode != 0
    record, _ = the_run(project)
    assert record["state"] == "AWAITING_APPROVAL"
    tasks_out = json.loads((project / ".aigentflow" / "runs" / record["id"] / "evidence.json").read_text())["tasks"]
    assert {t: tasks_out[t]["status"] for t in ("T1", "T2", "T3")} == {"T1": "refused", "T2": "refused",
                                                                      "T3": "refused"}
    assert "../outside.txt" in tasks_out["T1"]["detail"] and ".git" in tasks_out["T2"]["detail"]
    assert "symlink" in tasks_out["T3"]["detail"]
    assert tasks_out["T4"]["status"] == "passed" and tasks_out["T4"]["merged"]
    assert not (project.parent / "outside.txt").exists() and not any(outside.iterdir())
    assert not marker.exists(), marker.read_text()
    assert not (project / ".git" / "hooks" / "post-merge").read_text().count("pwned")


def test_a_test_command_that_never_ends_is_stopped_reported_and_leaves_nothing(project: Path,
                                                                               ray_address: str) -> None:
    import os

    from tests.worktree_project import cassette, developer, module_files, task

    model = cassette(project.parent / "loop.json", [task("T1", "t1")], [developer("T1", module_files(1))])
    loop = "python3 -c 'import sys; sys.argv.append(\"af-endless-marker\")\nwhile True: pass' af-endless-marker"
    result = run(project, ray_address, model, "--set", f"build.test_command={loop}", "--set", "build.timeout_s=2")
    assert result.returncode != 0
    record, _ = the_run(project)
    assert record["state"] == "AWAITING_APPROVAL"
    t1 = json.loads((project / ".aigentflow" / "runs" / record["id"] / "evidence.json").read_text())["tasks"]["T1"]
    assert t1["status"] == "failed" and t1["tests"]["killed_reason"] == "timeout"
    assert t1["tests"]["leftover_processes"] == 0 and "timeout" in t1["detail"]
    alive = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"af-endless-marker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                alive.append(pid)
        except OSError:
            pass
    assert alive == []


@pytest.mark.parametrize("branch, message", [("nope", "does not exist"), ("--upload-pack=x", "refused")])
def test_a_missing_or_hostile_integration_branch_is_refused_before_anything_is_recorded(
        project: Path, branch: str, message: str) -> None:
    model = eight_tasks(project.parent / "eight.json")
    result = aigentflow("run", REQUEST, "--model", model, *worktree_flags(f"git.integration_branch={branch}"),
                        cwd=project)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert json.loads(aigentflow("runs", "--json", cwd=project).stdout) == []
    assert git(project, "branch", "--list", "aigentflow/*") == ""


def test_a_failing_ci_gate_keeps_the_integration_branch_where_it_was(project: Path, ray_address: str) -> None:
    model = eight_tasks(project.parent / "gate.json", 2)
    main_before = git(project, "rev-parse", "main")
    gate = "echo 'lint: 3 problems' >&2; exit 1"
    result = run(project, ray_address, model, "--set", f"build.ci_command={gate}")
    assert result.returncode != 0
    record, steps = the_run(project)
    assert record["state"] == "AWAITING_APPROVAL" and steps["merge#1"]["status"] == "failed"
    assert "CI gate" in steps["merge#1"]["error"]
    evidence = json.loads((project / ".aigentflow" / "runs" / record["id"] / "evidence.json").read_text())
    assert evidence["gate"]["exit_code"] == 1 and "lint: 3 problems" in evidence["gate"]["stderr"]
    assert git(project, "rev-parse", "main") == main_before
    assert git(project, "worktree", "list").count("\n") == 2  # main + the two tasks; the gate's scratch is gone
