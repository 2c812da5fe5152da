"""Findings per tenant: `aigentflow patterns mine|list --tenant`, on a corpus of two tenants whose planted
patterns differ (real SQLite store, real Parquet segments), one pattern planted in both; an old findings table
rebuilt; and the isolation score's findings probe."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import duckdb
import pytest

from evolution.patterns.corpus import generate, score
from evolution.patterns.store import read_findings
from tests.conftest import aigentflow

ACME = ("schema", "tool_refused", "loops", "cost")
GLOBEX = ("schema", "frontend_timeouts", "rerouted", "extra_fixes")
"""Both plant the schema failure; the rest are each tenant's own."""


def _mine(project: Path, *args: str) -> dict:
    done = aigentflow("patterns", "mine", "--json", *args, cwd=project)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _owners(project: Path) -> tuple[dict[str, str], dict[str, str]]:
    """span id -> tenant (from the trace segments) and run id -> tenant (from the store)."""
    segments = [str(p) for p in (project / ".aigentflow" / "traces").rglob("*.parquet")]
    with duckdb.connect() as db:
        spans = dict(db.execute("SELECT span_id, tenant_id FROM read_parquet(?)", [segments]).fetchall())
    with sqlite3.connect(project / ".aigentflow" / "state.db") as db:
        runs = dict(db.execute("SELECT id, tenant_id FROM runs").fetchall())
    return spans, runs


@pytest.fixture
def two_tenants(sample_repo: Path) -> tuple[Path, dict[str, list[dict]]]:
    truth = {"acme": generate(sample_repo, runs=24, seed=21, tenant="acme", scenarios=ACME),
             "globex": generate(sample_repo, runs=24, seed=22, tenant="globex", scenarios=GLOBEX)}
    return sample_repo, truth


def test_each_tenants_patterns_are_found_only_under_it_with_only_its_evidence(two_tenants) -> None:
    project, truth = two_tenants
    report = _mine(project)
    assert report["tenants"] == ["acme", "globex"]
    span_owner, run_owner = _owners(project)
    by_tenant: dict[str, list[dict]] = {}
    for finding in report["findings"]:
        by_tenant.setdefault(finding["tenant_id"], []).append(finding)
        own_spans = {span_owner[s] for s in finding["evidence"]["span_ids"]}
        own_runs = {run_owner[r] for r in finding["evidence"]["run_ids"]}
        assert own_spans <= {finding["tenant_id"]} and own_runs == {finding["tenant_id"]}, finding
    assert set(by_tenant) == {"acme", "globex"}
    for tenant, expected in truth.items():
        # each tenant's findings are its planted patterns and nothing else: none of the other tenant's, and
        # no noise that recurs only across the two (each has one paused run, one wait on coverage)
        measured = score(by_tenant[tenant], expected)
        assert measured["recall"] == 1.0, (tenant, measured["missed"])
        assert measured["precision"] == 1.0, (tenant, measured["false_positives"])
    assert not [f for f in by_tenant["acme"] if f["kind"] == "capability_gap" and
                f["details"].get("dimension") == "task_type"], "frontend work is globex's"
    assert not [f for f in by_tenant["globex"] if f["details"].get("pattern") in ("prompt_loop", "cost_outlier")]

    # the pattern seen in both is two findings, one each, each counted over its own runs only
    schema = [f for f in report["findings"] if f["kind"] == "failure" and "broke the schema" in f["key"]]
    assert sorted(f["tenant_id"] for f in schema) == ["acme", "globex"]
    assert schema[0]["key"] == schema[1]["key"]
    for finding in schema:
        assert finding["count"] == 2 and len(finding["evidence"]["run_ids"]) == 2
        assert finding["score"] == pytest.approx(2 / 24, abs=1e-4)  # 2 of the tenant's 24 runs, not of 48

    stored = read_findings(project)
    assert len({f["id"] for f in stored if f["key"] == schema[0]["key"]}) == 2
    assert sorted((f["tenant_id"], f["kind"], f["key"]) for f in stored) == \
        sorted((f["tenant_id"], f["kind"], f["key"]) for f in report["findings"])
    listed = aigentflow("patterns", "list", "--tenant", "acme", "--json", cwd=project)
    assert listed.returncode == 0, listed.stderr
    acme = json.loads(listed.stdout)["findings"]
    assert acme and {f["tenant_id"] for f in acme} == {"acme"}
    assert {f["id"] for f in acme} == {f["id"] for f in stored if f["tenant_id"] == "acme"}
    table = aigentflow("patterns", "list", "--tenant", "globex", cwd=project)
    assert table.returncode == 0, table.stderr
    assert "tenant" in table.stdout.splitlines()[1] and "globex" in table.stdout and "acme" not in table.stdout
    assert "frontend tasks succeed" in table.stdout


def test_mining_one_tenant_stores_only_its_findings_and_mining_all_adds_the_others(two_tenants) -> None:
    project, truth = two_tenants
    only = _mine(project, "--tenant", "globex")
    assert only["tenants"] == ["globex"] and {f["tenant_id"] for f in only["findings"]} == {"globex"}
    assert score(only["findings"], truth["globex"])["precision"] == 1.0
    assert {f["tenant_id"] for f in read_findings(project)} == {"globex"}
    every = _mine(project)
    globex = len(only["findings"])
    assert every["stored"] == {"new": len(every["findings"]) - globex, "updated": globex}
    assert {f["tenant_id"] for f in read_findings(project)} == {"acme", "globex"}
    assert all(f["times_mined"] == (2 if f["tenant_id"] == "globex" else 1) for f in read_findings(project))
    # a registered tenant with no runs yet: nothing to find, and not an error
    with sqlite3.connect(project / ".aigentflow" / "state.db") as db:
        db.execute("INSERT INTO tenants (id, name, status, created_at) VALUES ('initech', 'Initech', 'active', "
                   "'2026-01-01T00:00:00.000+00:00')")
    empty = aigentflow("patterns", "mine", "--tenant", "initech", cwd=project)
    assert (empty.returncode, empty.stdout.strip()) == (0, "no findings")


@pytest.mark.parametrize(("args", "says"), [
    (("mine", "--tenant", "nope"), "there is no tenant 'nope' in this project; tenants are: acme, default, globex"),
    (("mine", "--tenant", "Acme Corp"), "is not a lowercase slug"),
    (("list", "--tenant", "nope"), "there is no tenant 'nope'"),
    (("list", "--tenant", "acme;--"), "is not a lowercase slug"),
])
def test_an_unknown_or_malformed_tenant_is_refused_and_nothing_is_mined(two_tenants, args, says) -> None:
    project, _ = two_tenants
    done = aigentflow("patterns", *args, cwd=project)
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr and "Traceback" not in done.stderr
    assert not (project / ".aigentflow" / "evolution.db").exists()
    assert not (project / ".aigentflow" / "evolution").exists()


OLD_TABLE = """
CREATE TABLE findings (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, key TEXT NOT NULL, title TEXT NOT NULL, count INTEGER NOT NULL,
    first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, score REAL NOT NULL, span_ids_json TEXT NOT NULL,
    run_ids_json TEXT NOT NULL, details_json TEXT NOT NULL, mined_at TEXT NOT NULL,
    times_mined INTEGER NOT NULL DEFAULT 1, UNIQUE (kind, key));
CREATE INDEX findings_by_kind ON findings(kind, score DESC);
"""


def test_a_findings_table_from_before_tenants_is_read_as_defaults_and_rebuilt_by_the_next_mining(
        two_tenants) -> None:
    project, _ = two_tenants
    first = _mine(project)
    schema = {f["tenant_id"]: f for f in first["findings"] if "broke the schema" in f["key"]}
    database = project / ".aigentflow" / "evolution.db"
    database.unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    old = schema["acme"]
    with sqlite3.connect(database) as db:  # as mining wrote it before findings had a tenant
        db.executescript(OLD_TABLE)
        db.execute("INSERT INTO findings VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", (
            "0123456789ab", old["kind"], old["key"], old["title"], 5, "2020-01-01T00:00:00.000+00:00",
            old["last_seen"], 0.5, json.dumps([]), json.dumps(["old-run"]), json.dumps(old["details"]), "then", 4))
    listed = aigentflow("patterns", "list", "--json", cwd=project)
    assert listed.returncode == 0, listed.stderr
    (before,) = json.loads(listed.stdout)["findings"]
    assert (before["id"], before["tenant_id"], before["count"]) == ("0123456789ab", "default", 5)
    assert json.loads(aigentflow("patterns", "list", "--tenant", "acme", "--json", cwd=project).stdout) == \
        {"findings": []}

    again = _mine(project)  # the same key for acme and globex: the old UNIQUE (kind, key) would refuse it
    assert again["stored"]["new"] == len(again["findings"])
    with sqlite3.connect(database) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(findings)")]
        kept = db.execute("SELECT tenant_id, count, first_seen, times_mined FROM findings WHERE id='0123456789ab'")
        assert kept.fetchone() == ("default", 5, "2020-01-01T00:00:00.000+00:00", 4)
        assert db.execute("SELECT count(*) FROM findings WHERE key=?", (old["key"],)).fetchone() == (3,)
        indexes = {row[1] for row in db.execute("PRAGMA index_list(findings)")}
    assert "tenant_id" in columns and {"findings_by_kind", "findings_by_tenant"} <= indexes
    assert {f["key"] for f in read_findings(project, tenant="acme")} == \
        {f["key"] for f in again["findings"] if f["tenant_id"] == "acme"}


def test_the_isolation_score_probes_each_findings_evidence_and_finds_a_planted_leak(two_tenants) -> None:
    from aigentflow.tenants.isolation import measure

    project, _ = two_tenants
    before = measure(project)
    _mine(project)
    findings = read_findings(project)
    evidence_runs = sum(len(f["evidence"]["run_ids"]) for f in findings)
    clean = measure(project)
    assert clean["leaks"] == 0 and clean["score"] == 1.0
    assert clean["checked"] == before["checked"] + evidence_runs
    assert clean["findings"] == len(findings)

    victim = next(f for f in findings if f["tenant_id"] == "acme")
    _, run_owner = _owners(project)
    theirs = next(r for r, t in run_owner.items() if t == "globex")
    with sqlite3.connect(project / ".aigentflow" / "evolution.db") as db:  # acme's finding cites a globex run
        db.execute("UPDATE findings SET run_ids_json=? WHERE id=?",
                   (json.dumps([*victim["evidence"]["run_ids"], theirs]), victim["id"]))
    leaked = measure(project)
    assert leaked["leaks"] == 1 and leaked["checked"] == clean["checked"] + 1
    assert leaked["score"] == pytest.approx(1 - 1 / leaked["checked"])
