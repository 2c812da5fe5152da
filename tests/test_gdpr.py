"""GDPR operations end to end: a subject planted in a real run (the replay model's demo via the CLI) and in
every other place aigentflow keeps data is exported, then erased through a kill -9, with no residue in any
byte of the project (SQLite free pages and WALs, DuckDB, Parquet, git objects)."""

from __future__ import annotations

import json
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import DEMO_REQUEST, aigentflow, cli_env
from tests.gdpr_support import ALIAS, SUBJECT, plant, residue

REQUEST = f"{DEMO_REQUEST}; requested by {SUBJECT}"


def _demo_settings() -> list[str]:
    from aigentflow.demo import demo_settings

    return [arg for key, value in demo_settings().items() for arg in ("--set", f"{key}={value}")]


def _json(result: subprocess.CompletedProcess[str]) -> object:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_demo_run_export_erase_through_kill9_leaves_no_residue(sample_repo: Path, ray_address: str) -> None:
    run = aigentflow("run", REQUEST, "--model", "replay/demo", "--set", "model.replay_lenient=true",
                     "--address", ray_address, *_demo_settings(), cwd=sample_repo)
    assert run.returncode == 0, run.stderr
    run_id = json.loads(aigentflow("runs", "--json", cwd=sample_repo).stdout)[0]["id"]
    plant(sample_repo, run_id)

    started = time.monotonic()
    exported = _json(aigentflow("gdpr", "export", SUBJECT, "--alias", ALIAS, "--json", cwd=sample_repo))
    export_s = time.monotonic() - started
    counts = exported["counts"]
    for location in ("store", "findings", "traces", "outputs", "worktrees", "git"):
        assert counts[location] > 0, (location, counts)
    with zipfile.ZipFile(exported["archive"]) as bundle:
        manifest = json.loads(bundle.read("manifest.json"))
        assert {"manifest.json", "records/store.json", "records/traces.json"} <= set(bundle.namelist())
    tables = {h["where"].get("table") for h in manifest["hits"] if h["location"] == "store"}
    assert {"runs", "audit"} <= tables
    assert any(h["where"].get("span_id") == "1" * 16 for h in manifest["hits"])
    assert any(h["where"].get("line") for h in manifest["hits"] if h["location"] == "outputs")

    killed = aigentflow("gdpr", "erase", SUBJECT, "--alias", ALIAS, "--yes", cwd=sample_repo,
                        env=cli_env(AIGENTFLOW_FAULTS="kill-self@gdpr.erase:3"))
    assert killed.returncode == -9, killed.stderr
    pending = [r for r in _json(aigentflow("gdpr", "requests", "--json", cwd=sample_repo)) if r["kind"] == "erase"]
    assert [r["status"] for r in pending] == ["in_progress"], "a half-done erase is never reported as done"
    assert residue(sample_repo), "the kill left work to do"

    started = time.monotonic()
    erased = _json(aigentflow("gdpr", "erase", SUBJECT, "--alias", ALIAS, "--yes", "--json", cwd=sample_repo))
    erase_s = time.monotonic() - started
    assert erased["resumed"] and erased["request"]["status"] == "done" and not erased["remaining"]
    assert residue(sample_repo) == []
    again = _json(aigentflow("gdpr", "export", SUBJECT, "--alias", ALIAS, "--json", cwd=sample_repo))
    assert again["hits"] == 0

    proof = _json(aigentflow("audit", "--event", "gdpr.erased", "--json", cwd=sample_repo))
    assert len(proof) == 1 and proof[0]["data"]["subject_hash"] == erased["request"]["subject_hash"]
    assert proof[0]["data"]["counts"]["traces"] == counts["traces"]
    assert SUBJECT not in json.dumps(proof).lower()
    listing = aigentflow("gdpr", "requests", cwd=sample_repo)
    assert "within 30 days" in listing.stdout and SUBJECT not in listing.stdout
    assert "[erased:" in (sample_repo / ".aigentflow" / "runs" / run_id / "notes.md").read_text()
    worktree = sample_repo / ".aigentflow" / "worktrees" / run_id / "planted"
    status = subprocess.run(["git", "status", "--porcelain"], check=True, cwd=worktree, capture_output=True,
                            text=True).stdout
    assert status.split() == ["??", "scratch.txt"], "the worktree matches its rewritten branch"
    print(f"\nexport {export_s:.2f} s, erase (resumed) {erase_s:.2f} s, hits {exported['hits']}")


def _recorded_run(repo: Path, request: str) -> str:
    from aigentflow.store.sqlite import SQLiteRunStore

    with SQLiteRunStore(repo / ".aigentflow" / "state.db") as store:
        project = store.get_project()
        assert project is not None
        return store.create_run(project_id=project["id"], request=request, model="replay/demo", settings={},
                                flags={}).id


def test_unknown_subject_is_an_empty_export(sample_repo: Path) -> None:
    result = _json(aigentflow("gdpr", "export", "nobody@example.org", "--json", cwd=sample_repo))
    assert result["hits"] == 0 and result["request"]["status"] == "done"
    with zipfile.ZipFile(result["archive"]) as bundle:
        assert json.loads(bundle.read("manifest.json"))["hits"] == []
    assert aigentflow("gdpr", "erase", "nobody@example.org", "--yes", cwd=sample_repo).returncode == 0
    too_short = aigentflow("gdpr", "export", "al", cwd=sample_repo)
    assert too_short.returncode == 2 and "too short" in too_short.stderr


def test_pseudonymise_is_stable_and_complete(sample_repo: Path) -> None:
    run_id = _recorded_run(sample_repo, f"Fix the login of {SUBJECT}")
    plant(sample_repo, run_id)
    first = _json(aigentflow("gdpr", "erase", SUBJECT, "--alias", ALIAS, "--pseudonymise", "--yes", "--json",
                             cwd=sample_repo))
    assert first["mode"] == "pseudonymise" and residue(sample_repo) == []
    runs = json.loads(aigentflow("runs", "--json", cwd=sample_repo).stdout)
    pseudonym = runs[0]["request"].removeprefix("Fix the login of ")
    assert pseudonym.startswith("subject-") and pseudonym in (sample_repo / ".aigentflow" / "runs" / run_id /
                                                             "notes.md").read_text()
    key = sample_repo / ".aigentflow" / "gdpr" / "subject.key"
    assert key.stat().st_mode & 0o077 == 0
    _recorded_run(sample_repo, f"Again for {SUBJECT.upper()}")
    _json(aigentflow("gdpr", "erase", SUBJECT, "--pseudonymise", "--yes", "--json", cwd=sample_repo))
    requests = [r["request"] for r in json.loads(aigentflow("runs", "--json", cwd=sample_repo).stdout)]
    assert requests[0] == f"Again for {pseudonym}", "the same subject gets the same pseudonym"


def test_consent_is_enforced_before_a_run_starts(sample_repo: Path) -> None:
    request = f"{DEMO_REQUEST} for {SUBJECT}"
    on = ("--set", "gdpr.require_consent=true")
    refused = aigentflow("run", request, "--model", "replay/demo", *on, cwd=sample_repo)
    assert refused.returncode == 2 and "without consent" in refused.stderr and "no consent record" in refused.stderr
    assert SUBJECT not in refused.stderr
    assert json.loads(aigentflow("runs", "--json", cwd=sample_repo).stdout) == [], "nothing was recorded"
    assert aigentflow("gdpr", "consent", "give", SUBJECT, "--purpose", "processing", cwd=sample_repo).returncode == 0
    from aigentflow.gdpr.consent import check_request

    state = sample_repo / ".aigentflow"
    check_request(state / "state.db", state, request, "processing")  # consent given: no error
    assert aigentflow("gdpr", "consent", "withdraw", ALIAS, cwd=sample_repo).returncode == 0
    from aigentflow.exceptions import UsageError

    with pytest.raises(UsageError, match="withdrew consent"):
        check_request(state / "state.db", state, f"{DEMO_REQUEST} as {ALIAS} asked", "processing")
    listed = _json(aigentflow("gdpr", "consent", "list", SUBJECT, "--json", cwd=sample_repo))
    assert [(c["purpose"], c["given"]) for c in listed] == [("processing", True)]


def test_retention_removes_what_is_older_than_the_policy(sample_repo: Path) -> None:
    from aigentflow.config.settings import GdprSettings
    from aigentflow.gdpr.retention import apply_retention
    from aigentflow.project.paths import ProjectPaths
    from aigentflow.store.sqlite import SQLiteRunStore

    run_id = _recorded_run(sample_repo, "an old run")
    going = _recorded_run(sample_repo, "a run still going")
    plant(sample_repo, run_id)
    (sample_repo / ".aigentflow" / "runs" / going).mkdir()
    with SQLiteRunStore(sample_repo / ".aigentflow" / "state.db") as store:
        store.transition(run_id, expected_version=0, to_state="CANCELLED", return_to=None, event="CANCEL",
                         terminal=True)
    paths = ProjectPaths(sample_repo)
    policy = GdprSettings(retention_traces_days=1, retention_outputs_days=1, retention_worktrees_days=1)
    assert not any(apply_retention(paths, policy, dry_run=True).removed.values()), "nothing is a day old yet"
    later = time.time() + 2 * 86400
    dry = apply_retention(paths, policy, dry_run=True, now=later)
    assert dry.removed["traces"] and dry.removed["outputs"] and (paths.runs_dir / run_id).is_dir()
    done = apply_retention(paths, policy, now=later)
    assert not list((paths.traces_dir / "segments").glob("*.parquet")) and done.spans_removed == 1
    assert not (paths.runs_dir / run_id).exists() and (paths.runs_dir / going).is_dir(), "only finished runs' go"
    assert "branch:aigentflow/" + run_id + "/planted" in done.removed["worktrees"]
    assert not (sample_repo / ".aigentflow" / "worktrees" / run_id).exists()
    audit = _json(aigentflow("audit", "--event", "gdpr.retention", "--json", cwd=sample_repo))
    assert audit[0]["data"]["traces"] == len(done.removed["traces"])
    assert aigentflow("gdpr", "retention", "--dry-run", "--json", cwd=sample_repo).returncode == 0


def test_article30_record_comes_from_the_configuration(sample_repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "art30.md"
    result = aigentflow("gdpr", "article30", "--output", str(out), "--set", cwd=sample_repo)
    assert result.returncode == 2  # no --set on this command: a usage error
    (sample_repo / ".aigentflow" / "config.toml").write_text(
        '[gdpr]\ncontroller = "Example Ltd"\nretention_traces_days = 30\nrequire_consent = true\n')
    assert aigentflow("gdpr", "article30", "--output", str(out), cwd=sample_repo).returncode == 0
    text = out.read_text()
    for part in ("Article 30", "Example Ltd", "Traces: 30 days", "Recipients", "replay", "Sandbox", "Redaction",
                 "Encryption", "Consent: required"):
        assert part in text, part
