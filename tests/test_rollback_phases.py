"""`aigentflow admin rollback PHASE` and `--undo` for each phase of the rollout plan, as an operator runs them
on real projects (real git repositories, SQLite stores, runs driven by the engine with the replay model):
what the rollback exports, what a user then sees (flags, switches, files, rows, new runs), and that the undo
brings it back."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import tomllib
from pathlib import Path

from aigentflow.project.paths import ProjectPaths
from aigentflow.store.sqlite import SQLiteRunStore
from tests.conftest import aigentflow
from tests.test_engine import drive, start


def flag(repo: Path, key: str, *context: str) -> dict:
    done = aigentflow("flags", "get", key, *context, "--json", cwd=repo)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def switches(repo: Path) -> dict:
    done = aigentflow("admin", "emergency", "--json", cwd=repo)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def audit(repo: Path, prefix: str) -> list[dict]:
    done = aigentflow("audit", "--event", prefix, "--json", cwd=repo)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def ok(*args: str, cwd: Path) -> str:
    done = aigentflow(*args, cwd=cwd)
    assert done.returncode == 0, f"{args}: {done.stderr}{done.stdout}"
    return done.stdout


def flags_tables(repo: Path) -> dict:
    path = ProjectPaths(repo).state_dir / "flags.toml"
    return tomllib.loads(path.read_text()).get("flags", {}) if path.exists() else {}


def test_v1_0_rollback_falls_back_to_the_core_agents_and_undo_restores_the_flags(sample_repo: Path) -> None:
    ok("config", "set", "flags.preset", "v1", cwd=sample_repo)
    ok("flags", "set", "agents.reviewer", "true", "--rule", "tenant=acme", cwd=sample_repo)
    ok("config", "set", "flags.features.codeReview", "true", cwd=sample_repo)
    tables_before = flags_tables(sample_repo)
    paths, before_run, _ = start(sample_repo)
    assert before_run.flags["agents.backendDev"] is True

    done = aigentflow("admin", "rollback", "v1.0", cwd=sample_repo)
    assert done.returncode == 0, done.stderr
    export = Path(re.search(r"exported the flags as they were to (\S+)", done.stdout).group(1))
    assert export.parent == paths.state_dir / "exports" and export.name.startswith("rollback-v1.0-")
    kept = json.loads(export.read_text())
    assert kept["flags"]["agents.reviewer"]["table"] == tables_before["agents.reviewer"]
    assert kept["flags"]["features.codeReview"]["config"] is True
    assert "turned 19 flag(s) off" in done.stdout and "core agents" in done.stdout

    for key in ("agents.backendDev", "agents.tester", "agents.gitAgent", "features.gitWorktrees",
                "features.codeReview"):
        assert flag(sample_repo, key)["value"] is False, key
    assert flag(sample_repo, "agents.reviewer", "--tenant", "acme")["value"] is False, "the rule went too"
    assert flag(sample_repo, "agents.analyst")["value"] is True, "the core agents stay"
    changes = [e["data"] for e in audit(sample_repo, "flag.changed")]
    assert sum(1 for c in changes if c["change"].startswith("rollback")) == 19

    _, run, spec = start(sample_repo)
    assert drive(paths, run, spec).state == "COMPLETED"
    store = SQLiteRunStore(paths.database)
    try:
        assert [t.to_state for t in store.transitions(run.id)] == [
            "CREATED", "ANALYZING", "PLANNING", "ARCHITECTING", "COMPLETED"], "only the core agents ran"
        assert store.get_run(before_run.id).flags["agents.backendDev"] is True, "a recorded run keeps its flags"
    finally:
        store.close()

    again = ok("admin", "rollback", "v1.0", cwd=sample_repo)
    assert "nothing changed" in again and len(list((paths.state_dir / "exports").iterdir())) == 1

    undone = ok("admin", "rollback", "v1.0", "--undo", cwd=sample_repo)
    assert f"restored from {export}" in undone
    assert flag(sample_repo, "agents.backendDev")["value"] is True
    assert flag(sample_repo, "agents.reviewer", "--tenant", "acme")["value"] is True
    assert flag(sample_repo, "features.codeReview")["source"].startswith("project file")
    assert flags_tables(sample_repo) == tables_before
    assert json.loads(export.read_text())["undone_at"]
    assert [e["data"]["phase"] for e in audit(sample_repo, "admin.rollback")] == ["v1.0", "v1.0", "v1.0"]
    assert [e["event"] for e in audit(sample_repo, "admin.rollback")][-1] == "admin.rollback.undone"
    twice = aigentflow("admin", "rollback", "v1.0", "--undo", cwd=sample_repo)
    assert twice.returncode == 2 and "no rollback of v1.0 to undo" in twice.stderr


def test_enterprise_rollback_exports_each_tenant_goes_single_tenant_and_undo_lifts_it(sample_repo: Path) -> None:
    ok("config", "set", "flags.preset", "enterprise", cwd=sample_repo)
    paths, own, _ = start(sample_repo)
    ok("tenants", "create", "acme", cwd=sample_repo)
    _, acme, _ = start(sample_repo, **{"run.tenant": "acme"})
    store = SQLiteRunStore(paths.database)
    try:
        store.append_audit("support.note", acme.id, {"note": "acme's ticket"}, tenant_id="acme")
    finally:
        store.close()
    assert flag(sample_repo, "features.multiTenant")["value"] is True

    done = ok("admin", "rollback", "enterprise", cwd=sample_repo)
    files = dict(re.findall(r"tenant (\S+): \d+ rows exported to (\S+) \(kept in place\)", done))
    assert set(files) == {"default", "acme"}
    for tenant, file in files.items():
        data = json.loads(Path(file).read_text())
        assert data["tenant"] == tenant
        assert {row["tenant_id"] for rows in data["tables"].values() for row in rows} == {tenant}
    acme_rows = json.loads(Path(files["acme"]).read_text())["tables"]
    assert [r["id"] for r in acme_rows["runs"]] == [acme.id]
    assert any(r["event"] == "support.note" for r in acme_rows["audit"])
    assert own.id not in Path(files["acme"]).read_text()

    assert flag(sample_repo, "features.multiTenant")["value"] is False
    assert switches(sample_repo)["single_tenant_mode"] is True
    assert "Emergency single-tenant-mode is ON" in ok("status", cwd=sample_repo)
    store = SQLiteRunStore(paths.database)
    try:
        assert {r.id for r in store.list_runs()} == {own.id, acme.id}, "the data stays in place"
    finally:
        store.close()
    assert "nothing changed" in ok("admin", "rollback", "enterprise", cwd=sample_repo)

    undone = ok("admin", "rollback", "enterprise", "--undo", cwd=sample_repo)
    assert "multi-tenant routing is back" in undone
    assert switches(sample_repo)["single_tenant_mode"] is False
    assert flag(sample_repo, "features.multiTenant")["value"] is True


def test_enterprise_undo_keeps_a_switch_the_operator_had_set(sample_repo: Path) -> None:
    ok("admin", "emergency", "--single-tenant-mode", cwd=sample_repo)
    ok("config", "set", "flags.features.multiTenant", "true", cwd=sample_repo)
    ok("admin", "rollback", "enterprise", cwd=sample_repo)
    ok("admin", "rollback", "enterprise", "--undo", cwd=sample_repo)
    assert switches(sample_repo)["single_tenant_mode"] is True, "it was on before the rollback"
    assert flag(sample_repo, "features.multiTenant")["value"] is True


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def test_mvp_rollback_archives_and_removes_the_state_and_undo_restores_it(sample_repo: Path) -> None:
    paths, run, spec = start(sample_repo)
    assert drive(paths, run, spec).state == "COMPLETED"
    state_before = sorted(str(p.relative_to(paths.state_dir)) for p in paths.state_dir.rglob("*")
                          if "exports" not in p.parts and not p.name.startswith("state.db-"))
    git_before = (_git(sample_repo, "rev-parse", "HEAD"), _git(sample_repo, "branch", "-a"),
                  _git(sample_repo, "status", "--porcelain"))

    done = ok("admin", "rollback", "mvp", cwd=sample_repo)
    archive = Path(re.search(r"to (\S+\.tar\.gz)", done).group(1))
    assert [p.name for p in paths.state_dir.iterdir()] == ["exports"]
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "state.db" in names and f"runs/{run.id}" in names
    gone = aigentflow("status", cwd=sample_repo)
    assert gone.returncode == 2 and "aigentflow init" in gone.stderr
    assert (_git(sample_repo, "rev-parse", "HEAD"), _git(sample_repo, "branch", "-a"),
            _git(sample_repo, "status", "--porcelain")) == git_before, "the git repository is untouched"

    undone = ok("admin", "rollback", "mvp", "--undo", cwd=sample_repo)
    assert "restored" in undone
    assert sorted(str(p.relative_to(paths.state_dir)) for p in paths.state_dir.rglob("*")
                  if "exports" not in p.parts and not p.name.startswith("state.db-")) == state_before
    assert run.id in ok("status", cwd=sample_repo)
    events = [(e["event"], e["data"].get("phase")) for e in audit(sample_repo, "admin.rollback")]
    assert events == [("admin.rollback", "mvp"), ("admin.rollback.undone", "mvp")]


def test_mvp_rollback_is_refused_while_a_run_is_live_and_undo_after_a_new_init(sample_repo: Path) -> None:
    paths, run, _ = start(sample_repo)
    driver = subprocess.Popen(["sleep", "60"])
    try:
        store = SQLiteRunStore(paths.database)
        try:
            store.claim(run.id, pid=driver.pid)
        finally:
            store.close()
        refused = aigentflow("admin", "rollback", "mvp", cwd=sample_repo)
        assert refused.returncode == 2 and run.id in refused.stderr and "live" in refused.stderr
        assert paths.database.exists() and not list((paths.state_dir / "exports").glob("*.tar.gz"))
    finally:
        driver.kill()
        driver.wait()
    ok("admin", "rollback", "mvp", cwd=sample_repo)
    ok("init", cwd=sample_repo)  # a fresh start
    refused = aigentflow("admin", "rollback", "mvp", "--undo", cwd=sample_repo)
    assert refused.returncode == 2 and "initialised again" in refused.stderr
    store = SQLiteRunStore(paths.database)
    try:
        assert store.list_runs() == [], "the fresh state was left alone"
    finally:
        store.close()


def test_v2_0_rollback_undo_puts_the_evolution_state_back(sample_repo: Path) -> None:
    from evolution.tournament import store as evolution_store
    from tests.test_canary import ROLE, add_version, approve_promotion

    paths = ProjectPaths(sample_repo)
    ok("config", "set", "flags.preset", "v2", cwd=sample_repo)
    add_version(sample_repo, "1.2.0", layer=None)
    approve_promotion(sample_repo, "1.2.0")
    ok("canary", "advance", ROLE, cwd=sample_repo)
    ok("config", "set", f"agents.{ROLE}.version", "1.2.0", cwd=sample_repo)
    ratings = evolution_store.ratings(sample_repo, ROLE)
    canary = (paths.state_dir / "canary" / f"{ROLE}.json").read_text()

    done = ok("admin", "rollback", "v1", cwd=sample_repo)  # the first name of the v2.0 rollback
    export = json.loads(Path(re.search(r"exported the evolution state to (\S+)", done).group(1)).read_text())
    assert "features.selfEvolution" in done and set(export["switches_on"]) == {"disable_evolution",
                                                                              "disable_generated_agents"}
    cleared = sum(len(export["tables"][t]) for t in ("tournaments", "matches", "ratings", "promotions")
                  if t in export["tables"])
    assert cleared == 14 + 2 + 1, "14 matches, 2 ratings, 1 promotion"
    assert flag(sample_repo, "features.selfEvolution")["value"] is False
    assert flag(sample_repo, "evolution.requireApproval")["value"] is True, "the guards stay"
    state = switches(sample_repo)
    assert state["disable_evolution"] and state["disable_generated_agents"]

    undone = ok("admin", "rollback", "v2.0", "--undo", cwd=sample_repo)
    assert f"{cleared} tournament/rating/promotion rows" in undone, undone
    assert evolution_store.ratings(sample_repo, ROLE) == ratings
    assert (paths.state_dir / "canary" / f"{ROLE}.json").read_text() == canary
    assert ok("config", "get", f"agents.{ROLE}.version", cwd=sample_repo).strip().startswith("1.2.0")
    assert flag(sample_repo, "features.selfEvolution")["value"] is True
    state = switches(sample_repo)
    assert not state["disable_evolution"] and not state["disable_generated_agents"]


def test_phase_names_and_bad_input(sample_repo: Path) -> None:
    ambiguous = aigentflow("admin", "rollback", "v2", cwd=sample_repo)
    assert ambiguous.returncode == 2 and "`v2.0`" in ambiguous.stderr and "`enterprise`" in ambiguous.stderr
    lost = aigentflow("admin", "rollback", "v1.0", "--export", "x.json", cwd=sample_repo)
    assert lost.returncode == 2 and "add --undo" in lost.stderr
    wrong = sample_repo / "other.json"
    wrong.write_text(json.dumps({"phase": "enterprise"}))
    mismatch = aigentflow("admin", "rollback", "v1.0", "--undo", "--export", str(wrong), cwd=sample_repo)
    assert mismatch.returncode == 2 and "enterprise rollback, not of v1.0" in mismatch.stderr
    help_text = ok("admin", "rollback", "--help", cwd=sample_repo)
    assert all(name in help_text for name in ("mvp", "v1.0", "v2.0", "enterprise", "--undo"))
    assert not (ProjectPaths(sample_repo).state_dir / "exports").exists(), "nothing was written"
