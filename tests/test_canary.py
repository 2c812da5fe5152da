"""Canary rollout (evolution/rollout): real runs of the sample project (the engine in-process with the agent
classes, as tests/test_engine.py drives them; real SQLite, git and the replay model) routed by the canary
file; checks against the incumbent; a regression rolled back with an incident; the kill switch."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from aigentflow.exceptions import RunFailure
from aigentflow.project.paths import ProjectPaths
from aigentflow.roles.canary import bucket, canary_picks
from aigentflow.store.sqlite import SQLiteRunStore
from evolution.tournament import store
from tests.conftest import aigentflow
from tests.test_engine import drive, start

ROLE = "analyst"


def add_version(repo: Path, version: str, layer: str | None) -> None:
    folder = ProjectPaths(repo).agents_dir / ROLE
    folder.mkdir(parents=True, exist_ok=True)
    if layer is None:  # the same prompt as 1.0.0: the demo's recording answers it
        (folder / f"{version}.toml").write_text('description = "Analyst, same prompt"\n')
    else:
        (folder / "terse.md").write_text(layer)
        (folder / f"{version}.toml").write_text('prompt_layers = ["agents/analyst/terse.md"]\n')


def approve_promotion(repo: Path, version: str) -> None:
    for number in range(14):
        store.record_match(repo, {"key": f"t-c/{version}/{number}", "tournament_id": "t-c", "number": number,
                                  "role": ROLE, "task_id": "x", "version_a": version, "version_b": "1.0.0",
                                  "score_a": 1.0, "score_b": 0.0, "outcome": "a"})
    aigentflow("config", "set", "flags.evolution.requireApproval", "true", cwd=repo)
    done = aigentflow("tournament", "promote", ROLE, version, cwd=repo)
    assert "awaiting_approval" in done.stdout, done.stdout + done.stderr
    assert aigentflow("tournament", "approve", ROLE, version, cwd=repo).returncode == 0


def runs_until(repo: Path, version: str, wanted: int, most: int = 120,
               ray_address: str | None = None) -> list[tuple[str, str, str]]:
    """Real runs until ``wanted`` of them used ``version``: (run id, analyst version, final state). With
    ``ray_address`` the candidate's runs are driven by the Orchestrator on Ray (which equips each call with
    its role version's prompt layers), the others in-process (the incumbent is the built-in version)."""
    made = []
    for _ in range(most):
        paths, run, spec = start(repo)
        on_ray = ray_address and run.settings["agents"][ROLE]["version"] == version
        if on_ray:
            from aigentflow.cluster.connect import connect_ray
            from aigentflow.launch.driver import drive as drive_on_ray
            from aigentflow.run.runner import engine_options

            connect_ray(ray_address)
            drive_on_ray(paths, run, engine_options(run, spec), resume=False)
        else:
            with contextlib.suppress(RunFailure):  # a failed run is recorded FAILED; what the checks count
                drive(paths, run, spec)
        recorded = SQLiteRunStore(paths.database).get_run(run.id)
        made.append((run.id, recorded.settings["agents"][ROLE]["version"], recorded.state))
        if sum(1 for _, v, _ in made if v == version) >= wanted:
            break
        canary = paths.state_dir / "canary" / f"{ROLE}.json"
        if canary.exists() and json.loads(canary.read_text())["status"] != "active":
            break  # rolled back after a run (the watcher): no more candidate runs to wait for
    return made


def test_sticky_buckets_only_add_runs_as_the_percentage_rises(tmp_path: Path) -> None:
    ids = [f"261203-120000-{n:04x}" for n in range(400)]
    versions = {ROLE: {"version": "1.0.0"}}
    chosen = {}
    for percent in (10, 25, 50, 100):
        (tmp_path / "canary").mkdir(exist_ok=True)
        (tmp_path / "canary" / f"{ROLE}.json").write_text(json.dumps(
            {"role": ROLE, "incumbent": "1.0.0", "candidate": "1.1.0", "percent": percent, "status": "active"}))
        picked = {i for i in ids if canary_picks(tmp_path, i, versions, {ROLE: {"1.0.0", "1.1.0"}})}
        assert all(chosen_set <= picked for chosen_set in chosen.values()), "no run moves back"
        assert abs(len(picked) / len(ids) - percent / 100) < 0.07
        chosen[percent] = picked
    assert all((bucket(i) < 10) == (i in chosen[10]) for i in ids)


def test_canary_advances_through_its_stages_and_finishes_as_the_projects_version(sample_repo: Path) -> None:
    add_version(sample_repo, "1.2.0", layer=None)
    approve_promotion(sample_repo, "1.2.0")
    held = aigentflow("canary", "advance", ROLE, "--json", cwd=sample_repo)
    assert held.returncode == 0 and json.loads(held.stdout)["percent"] == 10, held.stderr
    refused = aigentflow("canary", "advance", ROLE, cwd=sample_repo)
    assert refused.returncode == 1 and "more candidate runs needed" in refused.stdout
    assert json.loads(aigentflow("canary", "status", ROLE, "--json", cwd=sample_repo).stdout)["percent"] == 10
    for percent in (25, 50, 100):
        made = runs_until(sample_repo, "1.2.0", 3)
        assert all(state == "COMPLETED" for _, _, state in made)
        done = aigentflow("canary", "advance", ROLE, "--json", cwd=sample_repo)
        assert done.returncode == 0, done.stdout + done.stderr
        assert json.loads(done.stdout)["percent"] == percent
    state = json.loads(aigentflow("canary", "status", ROLE, "--json", cwd=sample_repo).stdout)
    assert state["status"] == "completed"
    assert aigentflow("config", "get", f"agents.{ROLE}.version", cwd=sample_repo).stdout.strip() == "1.2.0"


def test_a_regressing_canary_is_rolled_back_with_an_incident(sample_repo: Path, ray_address: str) -> None:
    add_version(sample_repo, "1.1.0", layer="# Role: Analyst\n\nSay what the request needs. Be brief.\n")
    approve_promotion(sample_repo, "1.1.0")
    assert aigentflow("canary", "advance", ROLE, cwd=sample_repo).returncode == 0
    made = runs_until(sample_repo, "1.1.0", 3, ray_address=ray_address)
    # The terse prompt was never recorded for the demo's request: its runs fail; the incumbent's complete.
    assert {state for _, v, state in made if v == "1.1.0"} == {"FAILED"}
    assert {state for _, v, state in made if v == "1.0.0"} <= {"COMPLETED"}
    # Rolled back by the watcher after the run that showed the regression: no human command ran.
    canary = json.loads((ProjectPaths(sample_repo).state_dir / "canary" / f"{ROLE}.json").read_text())
    assert canary["status"] == "rolled_back" and "success rate" in canary["rollback_reason"]
    done = aigentflow("canary", "status", ROLE, "--json", cwd=sample_repo)
    state = json.loads(done.stdout)
    assert state["status"] == "rolled_back" and "success rate" in state["rollback_reason"]
    listed = aigentflow("canary", "incidents", "--json", cwd=sample_repo)
    assert [i["candidate"] for i in json.loads(listed.stdout)["incidents"]] == ["1.1.0"]
    paths, run, _ = start(sample_repo)
    assert SQLiteRunStore(paths.database).get_run(run.id).settings["agents"][ROLE]["version"] == "1.0.0"


def test_kill_switch_routes_every_run_to_the_incumbent_and_stops_tournaments(sample_repo: Path) -> None:
    add_version(sample_repo, "1.2.0", layer=None)
    approve_promotion(sample_repo, "1.2.0")
    aigentflow("canary", "advance", ROLE, cwd=sample_repo)
    canary = ProjectPaths(sample_repo).state_dir / "canary" / f"{ROLE}.json"
    data = json.loads(canary.read_text())
    canary.write_text(json.dumps({**data, "percent": 100}))
    assert aigentflow("canary", "disable-evolution", "--reason", "incident drill", cwd=sample_repo).returncode == 0
    paths, run, _ = start(sample_repo)
    assert SQLiteRunStore(paths.database).get_run(run.id).settings["agents"][ROLE]["version"] == "1.0.0"
    refused = aigentflow("tournament", "run", "--role", "backend_developer", cwd=sample_repo)
    assert refused.returncode == 2 and "incident drill" in refused.stderr
    assert aigentflow("canary", "advance", ROLE, cwd=sample_repo).returncode == 2
    assert aigentflow("canary", "enable-evolution", cwd=sample_repo).returncode == 0
    paths, run, _ = start(sample_repo)
    assert SQLiteRunStore(paths.database).get_run(run.id).settings["agents"][ROLE]["version"] == "1.2.0"


def test_advance_without_an_approved_promotion_changes_nothing(sample_repo: Path) -> None:
    done = aigentflow("canary", "advance", ROLE, cwd=sample_repo)
    assert done.returncode == 2 and "no approved promotion" in done.stderr
    assert not (ProjectPaths(sample_repo).state_dir / "canary").exists()
    assert aigentflow("canary", "rollback", ROLE, cwd=sample_repo).returncode == 2
