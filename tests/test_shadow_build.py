"""Shadow mode for build steps: while the Backend Developer's promoted version is in its shadow stage, each
build task's edits are made again by the candidate (same task, files and tests written first), applied and
tested in a scratch worktree of their own, recorded, and discarded. `aigentflow run` against the session's
Ray head, real git, the sandboxed pytest suite, replayed models; the candidates are the shipped tournament
variants (evolution/tournament/variants/backend_developer), installed by `canary advance`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from aigentflow.project.paths import ProjectPaths
from aigentflow.store.sqlite import SQLiteRunStore
from aigentflow.tracing.reader import read_spans
from evolution.tournament import store as evolution_store
from tests.conftest import aigentflow
from tests.worktree_project import (
    cassette,
    developer,
    git,
    make_project,
    task,
    tdd_flags,
    value_module,
    value_test,
    written_tests,
)

pytestmark = pytest.mark.ray

ROLE = "backend_developer"
REQUEST = "Add value functions to calc"


def tasks_and_answers(count: int, returns: int | None = None) -> tuple[list[dict], list[dict]]:
    """``count`` independent tasks, each with the tester's test and the developer's module (``returns``: the
    value the developer's functions return; None: the right one)."""
    tasks = [task(f"T{i}", f"value_{i}") for i in range(1, count + 1)]
    entries = [entry for i in range(1, count + 1) for entry in (
        written_tests(f"T{i}", value_test(i)), developer(f"T{i}", value_module(i, i if returns is None else returns)))]
    return tasks, entries


def project(root: Path, count: int) -> tuple[Path, str]:
    made = make_project(root / "calc")
    tasks, entries = tasks_and_answers(count)
    return made, cassette(root / "run.json", tasks, entries)


def shadow_stage(repo: Path, version: str, model: str | None = None) -> None:
    """``version`` of the Backend Developer promoted, approved and started in the shadow stage (`canary
    advance` copies the shipped variant into the project); ``model``: its own recorded answers."""
    for number in range(14):
        evolution_store.record_match(repo, {
            "key": f"t-s/{version}/{number}", "tournament_id": "t-s", "number": number, "role": ROLE,
            "task_id": "py-remove", "version_a": version, "version_b": "1.0.0", "score_a": 1.0, "score_b": 0.0,
            "outcome": "a"})
    for args in (("config", "set", "flags.evolution.requireApproval", "true"),
                 ("config", "set", "flags.evolution.shadowModeFirst", "true"),
                 ("tournament", "promote", ROLE, version), ("tournament", "approve", ROLE, version),
                 ("canary", "advance", ROLE)):
        done = aigentflow(*args, cwd=repo)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    rollout = json.loads((ProjectPaths(repo).state_dir / "canary" / f"{ROLE}.json").read_text())
    assert (rollout["stage"], rollout["candidate"]) == ("shadow", version)
    spec = ProjectPaths(repo).agents_dir / ROLE / f"{version}.toml"
    assert spec.exists(), "the shipped variant was installed"
    if model:
        spec.write_text(spec.read_text() + f'\nmodel = "{model}"\n')


def run(repo: Path, address: str, model: str) -> Any:
    return aigentflow("run", REQUEST, "--model", model, "--address", address, *tdd_flags(), cwd=repo, timeout=400)


def last_run(repo: Path) -> Any:
    store = SQLiteRunStore(ProjectPaths(repo).database, readonly=True)
    try:
        return store.list_runs(1)[0]
    finally:
        store.close()


def records(repo: Path) -> list[dict]:
    path = ProjectPaths(repo).state_dir / "shadow" / f"{ROLE}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


VOLATILE_KEYS = {"started_ns", "ended_ns", "duration_s", "seconds", "stdout", "stderr", "node_id", "time_s",
                 "wall_s", "cpu_s", "elapsed_s", "max_rss_kb"}
SHA = re.compile(r"\b[0-9a-f]{40}\b|(?<=\| )[0-9a-f]{10}\b|(?<=-> )[0-9a-f]{10}\b")
DURATION = re.compile(r"\b\d+(?:\.\d+)? ?(?:ms|s)\b")


def steady(value: Any, run_id: str, root: Path) -> Any:
    """A run's recorded output without what differs between any two runs (ids, paths, times, commit ids)."""
    if isinstance(value, dict):
        return {k: steady(v, run_id, root) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [steady(v, run_id, root) for v in value]
    if isinstance(value, str):
        value = value.replace(str(root), "<root>").replace(run_id, "<run>")
        return DURATION.sub("<t>", SHA.sub("<sha>", value))
    return value


def result_of(repo: Path) -> dict[str, Any]:
    """What the last run produced (what a shadow must not change): state, steps, outputs, files, audit,
    model calls, and git: its branches and the trees they hold."""
    paths = ProjectPaths(repo)
    record = last_run(repo)
    store = SQLiteRunStore(paths.database, readonly=True)
    try:
        steps = {s.step: (s.status, s.model_calls, steady(s.output, record.id, repo)) for s in store.steps(record.id)}
        audit = sorted(a.event for a in store.audit(record.id) if a.event != "shadow.played")
    finally:
        store.close()
    branches = git(repo, "for-each-ref", "--format=%(refname:short) %(objectname)^{tree}", "refs/heads/")
    trees = {name.replace(record.id, "<run>"): git(repo, "rev-parse", ref) for name, ref in
             (line.split() for line in branches.splitlines())}
    files = {p.name: steady(p.read_text(), record.id, repo) for p in paths.run_dir(record.id).iterdir()
             if p.name != "summary.md"}
    return {"state": record.state, "model_calls": record.model_calls, "steps": steps, "audit": audit,
            "trees": trees, "files": files}


def worktrees(repo: Path) -> list[str]:
    """The repository's worktrees (paths below it, the last run's id as <run>) and what each has checked out."""
    run_id = last_run(repo).id
    listed = git(repo, "worktree", "list", "--porcelain").split("\n\n")
    return sorted(" ".join(line for line in entry.splitlines() if not line.startswith("HEAD "))
                  .replace(str(repo), "<root>").replace(run_id, "<run>") for entry in listed)


def nothing_left(repo: Path) -> None:
    """No branch or worktree of a shadow is left behind."""
    assert "shadow" not in git(repo, "branch", "-a")
    assert not [w for w in worktrees(repo) if "/shadow-" in w or "detached" in w]
    assert not list((ProjectPaths(repo).root / ".aigentflow" / "worktrees").glob("*/shadow-*"))


def test_a_build_task_shadow_is_tested_on_a_scratch_and_changes_nothing_of_the_run(tmp_path: Path,
                                                                                    ray_address: str) -> None:
    plain, model = project(tmp_path / "plain", 1)
    done = run(plain, ray_address, model)
    assert done.returncode == 0, done.stdout + done.stderr
    shadowed, model = project(tmp_path / "shadowed", 1)
    shadow_stage(shadowed, "1.2.0")
    done = run(shadowed, ray_address, model)
    assert done.returncode == 0, done.stdout + done.stderr

    assert result_of(shadowed) == result_of(plain), "the shadow changed nothing of the run's result or branches"
    nothing_left(shadowed)
    assert worktrees(shadowed) == worktrees(plain)
    run_id = last_run(shadowed).id
    [record] = records(shadowed)
    assert (record["run_id"], record["step"], record["role"]) == (run_id, "build/T1", ROLE)
    mine, theirs = record["candidate"], record["incumbent"]
    assert (mine["version"], theirs["version"]) == ("1.2.0", "1.0.0")
    # Both made the same edits on the tester's failing test: both pass it (greet and value_1), in the sandbox.
    assert mine["ok"] and mine["tests_passed"] and mine["grade"] == 1.0 and mine["status"] == "passed"
    assert theirs["ok"] and theirs["tests_passed"] and theirs["grade"] == 1.0
    assert mine["tests"]["source"] == "junit" and (mine["tests"]["passed"], mine["tests"]["total"]) == (2, 2)
    assert mine["seconds"] > 0 and mine["model_calls"] == 1 and "cost_usd" in mine and mine["error"] is None
    store = SQLiteRunStore(ProjectPaths(shadowed).database, readonly=True)
    [played] = [a.data for a in store.audit(run_id) if a.event == "shadow.played"]
    assert played["step"] == "build/T1" and played["tests_passed"] == {"incumbent": True, "candidate": True}
    assert store.get_run(run_id).settings["agents"][ROLE]["version"] == "1.0.0", "no run is routed to a shadow"
    spans = read_spans(ProjectPaths(shadowed).traces_dir, run_id)
    marked = [s for s in spans if (s.get("attributes") or {}).get("aigentflow.shadow")]
    [shadow] = [s for s in marked if s["kind"] == "shadow"]
    assert shadow["name"] == f"shadow {ROLE}" and shadow["attributes"]["aigentflow.shadow.tests_passed"] is True
    kinds = {s["kind"] for s in marked if s.get("parent_id") == shadow["span_id"]}
    assert {"agent", "git", "exec"} <= kinds or {"agent", "git"} <= kinds, kinds
    assert all(s["attributes"].get("aigentflow.shadow.version") == "1.2.0" for s in marked)
    assert not [s for s in spans if s["kind"] == "git" and "shadow" in s["name"] and s not in marked]
    state = json.loads(aigentflow("canary", "status", ROLE, "--json", cwd=shadowed).stdout)
    assert state["stage"] == "shadow" and state["shadow"]["candidate"]["tasks_passed"] == 1


def test_a_candidate_whose_edits_fail_the_tests_is_rolled_back_on_the_test_pass_rate(tmp_path: Path,
                                                                                      ray_address: str) -> None:
    repo, model = project(tmp_path, 3)
    tasks, wrong = tasks_and_answers(3, returns=0)
    candidate_model = cassette(tmp_path / "terse.json", tasks, [e for e in wrong if e["role"] == ROLE])
    shadow_stage(repo, "1.1.0", candidate_model)
    done = run(repo, ray_address, model)
    assert done.returncode == 0, done.stdout + done.stderr
    record = last_run(repo)
    assert record.state == "COMPLETED", "the incumbent's edits decide the run"
    assert all((repo / "calc" / f"mod_{i}.py").read_text().endswith(f"return {i}\n") for i in (1, 2, 3))
    played = sorted(records(repo), key=lambda r: r["step"])
    assert [r["step"] for r in played] == ["build/T1", "build/T2", "build/T3"]
    for shadowed in played:
        mine = shadowed["candidate"]
        assert mine["version"] == "1.1.0" and mine["ok"] and not mine["tests_passed"]
        assert mine["grade"] == 0.5, "greet passes, value_N fails"
        assert shadowed["incumbent"]["tests_passed"]
    nothing_left(repo)
    # The watcher (after the run): 0 of 3 tasks against 3 of 3 is a regression of the test pass rate alone.
    rollout = json.loads((ProjectPaths(repo).state_dir / "canary" / f"{ROLE}.json").read_text())
    assert rollout["status"] == "rolled_back" and "test pass rate" in rollout["rollback_reason"], rollout
    assert "success rate" not in rollout["rollback_reason"]


def test_the_kill_switch_stops_build_step_shadows(tmp_path: Path, ray_address: str) -> None:
    repo, model = project(tmp_path, 1)
    shadow_stage(repo, "1.2.0")
    assert aigentflow("canary", "disable-evolution", "--reason", "drill", cwd=repo).returncode == 0
    done = run(repo, ray_address, model)
    assert done.returncode == 0, done.stdout + done.stderr
    assert records(repo) == []
    store = SQLiteRunStore(ProjectPaths(repo).database, readonly=True)
    assert not [a for a in store.audit(last_run(repo).id) if a.event == "shadow.played"]
    nothing_left(repo)
