"""Complete capture: a real run (the session's Ray head, a real repository, real sandboxed commands, a
replayed model) leaves spans for its sandboxed commands, its Git Agent's operations and merges, and a
human's decision, and `aigentflow traces query` finds them, with no secret in any of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigentflow.tracing import command_span, git_span
from tests.conftest import aigentflow
from tests.worktree_project import eight_tasks, make_project, worktree_flags

pytestmark = pytest.mark.ray

SECRET = "sk-proj-" + "Q7" * 20


@pytest.fixture
def project(tmp_path: Path, user_config: Path) -> Path:
    return make_project(tmp_path / "calc")


def rows(project: Path, sql: str, *args: str) -> list[dict]:
    result = aigentflow("traces", "query", sql, "--json", *args, cwd=project, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_commands_git_operations_merges_and_an_approval_are_traced(project: Path, ray_address: str) -> None:
    model = eight_tasks(project.parent / "gate.json", 2)
    gate = f"echo 'token {SECRET}' >&2; exit 1"  # the CI gate fails: the run waits for a human
    first = aigentflow("run", "Add value functions to calc", "--model", model, "--address", ray_address,
                       *worktree_flags(), "--set", f"build.ci_command={gate}", cwd=project, timeout=300)
    assert first.returncode != 0
    run_id = json.loads(aigentflow("runs", "--json", cwd=project).stdout)[0]["id"]
    resumed = aigentflow("resume", run_id, "--address", ray_address, cwd=project, timeout=300)  # approve
    assert resumed.returncode != 0  # the recorded gate still fails: back to AWAITING_APPROVAL

    commands = rows(project, "SELECT command_kind, process_executable_name AS program, process_exit_code AS code, "
                             "status, step, attributes->>'$.\"aigentflow.sandbox.env\"' AS env, parent_id "
                             "FROM spans WHERE kind = 'command' ORDER BY start_ns", "--run", run_id)
    tests = [c for c in commands if c["command_kind"] == "test"]
    assert {c["step"] for c in tests} == {"build/T1", "build/T2"}
    assert all(c["program"] == "python3" and c["code"] == 0 and c["status"] == "ok" for c in tests)
    assert all(c["env"] == "allowlist" for c in commands)
    gates = [c for c in commands if c["command_kind"] == "gate"]
    assert len(gates) == 2 and all(g["program"] == "echo" and g["code"] == 1 and g["status"] == "error"
                                   for g in gates)
    # every command span hangs under the span of the state it ran in
    states = {r["span_id"]: r["name"] for r in rows(project, "SELECT span_id, name FROM spans WHERE kind = 'state'")}
    assert {states.get(c["parent_id"]) for c in commands} == {"state BUILDING", "state MERGING"}

    # each build task says the language of the files it changed (the capability-gap miner groups by it)
    tasks = rows(project, "SELECT name, attributes->>'$.\"aigentflow.task.language\"' AS language FROM spans "
                          "WHERE kind = 'task' AND name LIKE 'build_task %' ORDER BY name", "--run", run_id)
    assert [t["name"] for t in tasks] == ["build_task T1", "build_task T2"]
    assert {t["language"] for t in tasks} == {"Python"}

    operations = rows(project, "SELECT git_operation AS op, count(*) AS n, bool_or(status = 'error') AS failed "
                               "FROM spans WHERE kind = 'git' GROUP BY op ORDER BY op", "--run", run_id)
    done = {o["op"]: o["n"] for o in operations}
    assert {"prepare_feature", "task_worktree", "commit", "merge", "scratch_worktree", "remove_worktree"} <= set(done)
    assert done["task_worktree"] >= 2 and done["commit"] >= 2 and not any(o["failed"] for o in operations)
    merges = rows(project, "SELECT attributes->>'$.\"aigentflow.git.source\"' AS source, "
                           "attributes->>'$.\"aigentflow.git.conflict\"' AS conflict FROM spans "
                           "WHERE git_operation = 'merge' ORDER BY start_ns")
    assert sorted(m["source"] for m in merges) == [f"aigentflow/{run_id}/task/T1", f"aigentflow/{run_id}/task/T2"]
    assert {m["conflict"] for m in merges} == {"false"}

    [decision] = rows(project, "SELECT name, kind, decision, state_from, state_to, duration_ms, "
                               "attributes->>'$.\"aigentflow.decision.waited_for\"' AS why FROM spans "
                               "WHERE kind = 'intervention'")
    assert decision["name"] == "human_decision approve" and decision["decision"] == "approve"
    assert (decision["state_from"], decision["state_to"]) == ("AWAITING_APPROVAL", "MERGING")
    assert "CI gate" in decision["why"] and decision["duration_ms"] > 0

    everything = aigentflow("traces", "query", "SELECT * FROM spans", "--json", cwd=project, timeout=60)
    assert everything.returncode == 0 and SECRET not in everything.stdout
    assert SECRET not in b"".join(p.read_bytes() for p in (project / ".aigentflow" / "traces").rglob("*.parquet")
                                  ).decode(errors="replace")


def test_command_and_git_records_become_spans_without_the_command_line() -> None:
    record = {"program": "pytest", "hash": "ab12", "exit_code": None, "killed_reason": "timeout", "duration_s": 1.5,
              "started_ns": 10**18, "isolation": {"network": "namespace"}, "output_truncated": True,
              "leftover_processes": 2, "env_withheld": 3}
    span = command_span(record, run_id="r", kind="test", step="build/T1")
    assert (span["name"], span["kind"], span["status"], span["error"]) == ("exec pytest", "command", "error",
                                                                          "stopped: timeout")
    assert span["end_ns"] - span["start_ns"] == 1_500_000_000 and "process.exit.code" not in span["attributes"]
    assert span["attributes"]["aigentflow.sandbox.network"] == "namespace"
    failed = git_span({"operation": "merge", "started_ns": 5, "ended_ns": 9, "error": "GitError: boom",
                       "attributes": {"target": "main", "conflict": True}}, run_id="r", parent_id="a" * 16)
    assert (failed["name"], failed["status"], failed["parent_id"]) == ("git merge", "error", "a" * 16)
    assert failed["attributes"] == {"aigentflow.git.operation": "merge", "aigentflow.git.target": "main",
                                    "aigentflow.git.conflict": True}


def test_the_program_of_a_shell_command_never_keeps_its_variables() -> None:
    from aigentflow.sandbox.records import program_name

    assert program_name(["sh", "-c", "TOKEN=abc PYTHONPATH=src /usr/bin/python3 -m pytest -q"]) == "python3"
    assert program_name(["/bin/true"]) == "true" and program_name(["sh", "-c", "  "]) == "?"
