"""Tenants as an operator uses them: `aigentflow tenants` (registry, quotas, what is left, when it resets),
`aigentflow audit --tenant`, and runs refused before anything is recorded (unknown or suspended tenant,
exhausted quota: audited, its incident recorded), or routed to 'default' in single-tenant mode. Real
SQLite, the CLI as a subprocess; runs checked in-process as `aigentflow run` checks them, before Ray."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aigentflow.exceptions import UsageError
from aigentflow.project.paths import ProjectPaths
from aigentflow.run.runner import create_run
from aigentflow.store.sqlite import SQLiteRunStore
from aigentflow.tenants.quotas import QuotaExhausted, period_bounds
from tests.conftest import DEMO_REQUEST, aigentflow, cli_env

ENV = cli_env(AIGENTFLOW_USER="alice")


def cli(repo: Path, *args: str) -> tuple[int, str, str]:
    done = aigentflow(*args, cwd=repo, env=ENV)
    return done.returncode, done.stdout, done.stderr


def ok_json(repo: Path, *args: str) -> object:
    code, out, err = cli(repo, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def start(repo: Path, tenant: str, **overrides: str):
    return create_run(ProjectPaths(repo), DEMO_REQUEST,
                      {"model.name": "replay/demo", "run.tenant": tenant, **overrides})


def store_of(repo: Path) -> SQLiteRunStore:
    return SQLiteRunStore(ProjectPaths(repo).database)


def test_tenants_are_registered_listed_and_shown_and_bad_ids_are_refused(sample_repo: Path) -> None:
    assert [t["id"] for t in ok_json(sample_repo, "tenants", "list")] == ["default"]
    created = ok_json(sample_repo, "tenants", "create", "acme", "--name", "Acme Corp")
    assert (created["id"], created["name"], created["status"]) == ("acme", "Acme Corp", "active")
    code, out, _ = cli(sample_repo, "tenants", "create", "globex")
    assert code == 0 and "created tenant globex" in out
    assert [t["id"] for t in ok_json(sample_repo, "tenants", "list")] == ["acme", "default", "globex"]
    shown = ok_json(sample_repo, "tenants", "show", "acme")
    assert (shown["name"], shown["runs"], shown["quotas"], shown["calls_per_minute"]) == ("Acme Corp", 0, [], None)

    for bad in ("Acme", "acme_corp", "acme-", "a" * 41, ""):
        code, _, err = cli(sample_repo, "tenants", "create", bad)
        assert code == 2 and "is not a lowercase slug" in err, (bad, err)
    code, _, err = cli(sample_repo, "tenants", "create", "acme")
    assert code == 2 and "tenant 'acme' already exists" in err
    code, _, err = cli(sample_repo, "tenants", "create", "default")
    assert code == 2 and "already exists" in err
    for args in (("show", "initech"), ("quota", "show", "initech"), ("suspend", "initech")):
        code, _, err = cli(sample_repo, "tenants", *args)
        assert code == 2 and "no tenant 'initech' is registered" in err and "tenants create initech" in err
    code, _, err = cli(sample_repo, "tenants", "suspend", "default")
    assert code == 2 and "cannot be suspended" in err
    assert [t["id"] for t in ok_json(sample_repo, "tenants", "list")] == ["acme", "default", "globex"]


def test_quotas_are_set_shown_with_usage_and_reset_time_and_unset(sample_repo: Path) -> None:
    cli(sample_repo, "tenants", "create", "acme")
    code, out, err = cli(sample_repo, "tenants", "quota", "set", "acme", "--runs", "5", "--tokens", "20000",
                         "--period", "day")
    assert code == 0, err
    assert "runs quota 5 per day" in out and "tokens quota 20000 per day" in out
    assert cli(sample_repo, "tenants", "quota", "set", "acme", "--cost-usd", "2.5", "--period", "month")[0] == 0
    assert cli(sample_repo, "tenants", "quota", "set", "acme", "--calls-per-minute", "30")[0] == 0
    start(sample_repo, "acme")
    start(sample_repo, "default")

    report = ok_json(sample_repo, "tenants", "quota", "show", "acme")
    quotas = {(q["kind"], q["period"]): q for q in report["quotas"]}
    assert set(quotas) == {("runs", "day"), ("tokens", "day"), ("cost_usd", "month")}
    runs = quotas[("runs", "day")]
    assert (runs["used"], runs["remaining"]) == (1, 4), "default's run is not acme's"
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    assert quotas[("runs", "day")]["resets_at"] == f"{tomorrow}T00:00:00.000+00:00"
    assert quotas[("cost_usd", "month")]["resets_at"].endswith("-01T00:00:00.000+00:00")
    assert report["calls_per_minute"] == 30
    code, out, _ = cli(sample_repo, "tenants", "quota", "show", "acme")
    assert "runs 1/5 this day" in out and "4 left; resets at " + tomorrow in out
    assert "calls_per_minute 30" in out

    for args, message in [
        (("--runs", "5"), "need --period"),
        (("--tokens", "5", "--period", "year"), "needs --period, one of day, week, month"),
        (("--calls-per-minute", "5", "--period", "day"), "leave out --period"),
        ((), "say which quota"),
    ]:
        code, _, err = cli(sample_repo, "tenants", "quota", "set", "acme", *args)
        assert code == 2 and message in err, (args, err)
    code, _, err = cli(sample_repo, "tenants", "quota", "set", "acme", "--runs", "-1", "--period", "day")
    assert code == 2 and "-1" in err

    assert cli(sample_repo, "tenants", "quota", "unset", "acme", "calls_per_minute")[0] == 0
    assert ok_json(sample_repo, "tenants", "quota", "show", "acme")["calls_per_minute"] is None
    code, _, err = cli(sample_repo, "tenants", "quota", "unset", "acme", "calls_per_minute")
    assert code == 2 and "has no calls_per_minute quota" in err


def test_audit_by_tenant_shows_only_that_tenants_rows_its_creation_and_quota_changes(sample_repo: Path) -> None:
    cli(sample_repo, "tenants", "create", "acme")
    cli(sample_repo, "tenants", "create", "globex")
    cli(sample_repo, "tenants", "quota", "set", "acme", "--runs", "3", "--period", "week")
    cli(sample_repo, "tenants", "quota", "set", "acme", "--runs", "4", "--period", "week")
    acme_run, _ = start(sample_repo, "acme")
    globex_run, _ = start(sample_repo, "globex")

    acme = ok_json(sample_repo, "audit", "--tenant", "acme")
    assert {e["tenant_id"] for e in acme} == {"acme"}
    assert [e["event"] for e in acme] == ["tenant.created", "quota.set", "quota.set", "run.created"]
    assert acme[0]["data"] == {"tenant": "acme", "name": "acme", "by": "alice"}
    assert (acme[2]["data"]["limit"], acme[2]["data"]["previous"], acme[2]["data"]["period"]) == (4.0, 3.0, "week")
    assert acme[3]["run_id"] == acme_run.id
    globex = ok_json(sample_repo, "audit", "--tenant", "globex")
    assert [(e["event"], e["run_id"]) for e in globex] == [("tenant.created", None), ("run.created", globex_run.id)]
    assert ok_json(sample_repo, "audit", "--tenant", "acme", "--run", globex_run.id) == []
    code, out, _ = cli(sample_repo, "audit", "--tenant", "globex")
    assert code == 0 and globex_run.id in out and acme_run.id not in out
    code, _, err = cli(sample_repo, "audit", "--tenant", "initech")
    assert code == 2 and "no tenant 'initech' is registered" in err


def test_a_run_of_an_unregistered_or_suspended_tenant_is_refused_before_anything_is_recorded(
        sample_repo: Path) -> None:
    code, out, err = cli(sample_repo, "run", DEMO_REQUEST, "--model", "replay/demo", "--set", "run.tenant=initech")
    assert code == 2, out + err
    assert "no tenant 'initech' is registered" in err and "aigentflow tenants create initech" in err
    assert "Ray" not in out + err, "refused before Ray was started"
    with pytest.raises(UsageError, match="not a lowercase slug"):
        start(sample_repo, "Not A Slug")
    cli(sample_repo, "tenants", "create", "acme")
    cli(sample_repo, "tenants", "suspend", "acme")
    with pytest.raises(UsageError, match=r"tenant 'acme' is suspended.*tenants activate acme"):
        start(sample_repo, "acme")
    with store_of(sample_repo) as store:
        assert store.list_runs() == []
        assert [e.event for e in store.audit(tenant_id="acme")] == ["tenant.created", "tenant.suspended"]
    cli(sample_repo, "tenants", "activate", "acme")
    run, _ = start(sample_repo, "acme")
    assert run.tenant_id == "acme"


def test_an_exhausted_runs_quota_refuses_the_run_naming_what_is_left_and_when_it_resets(sample_repo: Path) -> None:
    cli(sample_repo, "tenants", "create", "acme")
    cli(sample_repo, "tenants", "quota", "set", "acme", "--runs", "2", "--period", "day")
    cli(sample_repo, "tenants", "quota", "set", "acme", "--tokens", "100000", "--period", "month")
    first, _ = start(sample_repo, "acme")
    start(sample_repo, "acme")
    _, resets = period_bounds("day", datetime.now(UTC))
    when = resets.isoformat(timespec="milliseconds")
    with pytest.raises(QuotaExhausted) as refused:
        start(sample_repo, "acme")
    assert str(refused.value).startswith(f"quota exhausted for tenant acme: runs 2/2 this day; resets at {when} "
                                         "(tokens 100000 left this month)")
    assert "tenants quota set acme --runs N --period day" in str(refused.value)

    code, out, err = cli(sample_repo, "run", DEMO_REQUEST, "--model", "replay/demo", "--set", "run.tenant=acme")
    assert code == 2 and "quota exhausted for tenant acme: runs 2/2 this day" in err, out + err
    assert "Ray" not in out + err
    assert start(sample_repo, "default")[0].tenant_id == "default", "another tenant's quota is not default's"
    with store_of(sample_repo) as store:
        assert len(store.list_runs(tenant_id="acme")) == 2
        refusals = [e for e in store.audit(tenant_id="acme") if e.event == "quota.exhausted"]
        assert [(e.data["quota"], e.data["used"], e.data["limit"], e.data["where"], e.data["resets_at"])
                for e in refusals] == [("runs", 2, 2.0, "run", when)] * 2
    incidents = ok_json(sample_repo, "incidents", "list", "--rule", "quota-exhausted")
    assert [(i["tenant_id"], i["severity"], i["facts"]["quota"], i["count"]) for i in incidents] == \
        [("acme", "SEV2", "runs", 2)], "the incident was recorded at the refusals, without a detection run"
    assert first.tenant_id == "acme"


def test_single_tenant_mode_records_every_new_run_under_default(sample_repo: Path) -> None:
    from aigentflow.tenants.mode import set_single_tenant_mode

    cli(sample_repo, "tenants", "create", "acme")
    cli(sample_repo, "tenants", "quota", "set", "acme", "--runs", "0", "--period", "day")
    with pytest.raises(QuotaExhausted):
        start(sample_repo, "acme")
    with store_of(sample_repo) as store:
        set_single_tenant_mode(store, True)
    routed, _ = start(sample_repo, "acme")
    unknown, _ = start(sample_repo, "initech")  # routing is off: an unregistered tenant's run goes to default too
    assert (routed.tenant_id, unknown.tenant_id) == ("default", "default")
    assert routed.settings["run"]["tenant"] == "default", "what the run's parts read is where it was routed"
    with store_of(sample_repo) as store:
        set_single_tenant_mode(store, False)
    with pytest.raises(QuotaExhausted):
        start(sample_repo, "acme")


def test_a_role_version_of_one_tenant_serves_only_that_tenants_runs(sample_repo: Path) -> None:
    """A version generated from acme's runs (its spec names acme) is refused for another tenant's run,
    before anything is recorded; acme's runs may use it."""
    from tests.test_roles import spec_file, terse_analyst

    terse_analyst(sample_repo)
    spec_file(sample_repo, "analyst", "1.1.0.toml",
              'description = "A terser analyst"\ntenant = "acme"\n'
              'prompt_layers = ["roles/analyst.md", "agents/analyst/terse.md"]\n')
    cli(sample_repo, "tenants", "create", "acme")
    cli(sample_repo, "tenants", "create", "globex")
    listing = aigentflow("agents", "list", cwd=sample_repo, env=ENV)
    assert "tenant acme" in listing.stdout
    refused = aigentflow("run", "Add due dates", "--model", "replay/demo", "--set", "agents.analyst.version=1.1.0",
                         "--set", "run.tenant=globex", cwd=sample_repo, env=ENV)
    assert refused.returncode == 2 and "generated from another tenant's runs: analyst 1.1.0 (tenant acme)" in \
        refused.stderr
    with store_of(sample_repo) as store:
        assert store.list_runs() == []
    run, _ = start(sample_repo, "acme", **{"agents.analyst.version": "1.1.0"})
    assert run.tenant_id == "acme" and run.settings["agents"]["analyst"]["version"] == "1.1.0"
