"""`aigentflow admin rollback v1` (the rollout plan's v2.0 phase rollback), as a user runs it, on a project
with tournament results, an approved promotion, an active canary and a chosen role version; real stores."""

from __future__ import annotations

import json
import re
from pathlib import Path

from aigentflow.config.loader import load_config
from aigentflow.emergency import DISABLE_GENERATED
from aigentflow.project.paths import ProjectPaths
from aigentflow.store.sqlite import SQLiteRunStore
from evolution.tournament import store as evolution_store
from tests.conftest import aigentflow
from tests.test_canary import ROLE, add_version, approve_promotion
from tests.test_engine import start


def test_rollback_v1_exports_then_clears_evolution_and_restores_builtin_versions(sample_repo: Path) -> None:
    paths = ProjectPaths(sample_repo)
    add_version(sample_repo, "1.2.0", layer=None)
    approve_promotion(sample_repo, "1.2.0")
    assert aigentflow("canary", "advance", ROLE, cwd=sample_repo).returncode == 0
    assert aigentflow("config", "set", f"agents.{ROLE}.version", "1.2.0", cwd=sample_repo).returncode == 0
    assert aigentflow("admin", "--help", cwd=sample_repo).stdout.count("rollback") >= 1

    done = aigentflow("admin", "rollback", "v1", cwd=sample_repo)
    assert done.returncode == 0, done.stderr
    exported = Path(re.search(r"exported the evolution state to (\S+)", done.stdout).group(1))
    assert "cleared 14 matches, 2 ratings, 1 promotions" in done.stdout
    assert f"{ROLE}: back to its built-in version (was 1.2.0)" in done.stdout
    data = json.loads(exported.read_text())
    assert len(data["tables"]["matches"]) == 14 and {r["version"] for r in data["tables"]["ratings"]} == {
        "1.0.0", "1.2.0"}
    assert data["tables"]["promotions"][0]["status"] == "canary"
    assert json.loads(data["files"][f"canary/{ROLE}.json"])["candidate"] == "1.2.0"
    assert data["role_versions"] == {ROLE: "1.2.0"}

    assert evolution_store.ratings(sample_repo, ROLE) == []
    assert not (paths.state_dir / "canary" / f"{ROLE}.json").exists()
    assert (paths.state_dir / "evolution" / "disabled.json").exists()
    store = SQLiteRunStore(paths.database)
    assert store.get_control(DISABLE_GENERATED, False) is True
    assert [a.data["phase"] for a in store.audit(None) if a.event == "admin.rollback"] == ["v2.0"]
    assert load_config(sample_repo).settings.agents.get(ROLE) is None or \
        load_config(sample_repo).settings.agents[ROLE].version is None
    _, run, _ = start(sample_repo)
    assert store.get_run(run.id).settings["agents"][ROLE]["version"] == "1.0.0"
    board = json.loads(aigentflow("tournament", "leaderboard", "--json", cwd=sample_repo).stdout)
    assert board["ratings"] == []
    refused = aigentflow("tournament", "run", "--role", "backend_developer", cwd=sample_repo)
    assert refused.returncode == 2 and "admin rollback v2.0" in refused.stderr

    again = aigentflow("admin", "rollback", "v1", cwd=sample_repo)
    assert again.returncode == 0 and "already rolled back to v1: nothing changed" in again.stdout
    assert "no tournament, canary or shadow state to export" in again.stdout
    assert len(list((paths.state_dir / "exports").iterdir())) == 1


def test_rollback_to_an_unknown_phase_changes_nothing(sample_repo: Path) -> None:
    paths = ProjectPaths(sample_repo)
    refused = aigentflow("admin", "rollback", "v3", cwd=sample_repo)
    assert refused.returncode == 2 and "there is no rollback to 'v3'" in refused.stderr
    assert "Nothing changed" in refused.stderr
    assert not (paths.state_dir / "evolution" / "disabled.json").exists()
    assert SQLiteRunStore(paths.database).get_control(DISABLE_GENERATED, False) is False
