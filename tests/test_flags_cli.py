"""`aigentflow flags` and `aigentflow audit` as a user runs them: changes land in .aigentflow/flags.toml,
are audited (who, what, old -> new), and bad input exits 2 with nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import aigentflow, cli_env

ENV = cli_env(AIGENTFLOW_USER="alice")


def flags(*args: str, cwd: Path) -> tuple[int, str, str]:
    done = aigentflow("flags", *args, cwd=cwd, env=ENV)
    return done.returncode, done.stdout, done.stderr


def audit_entries(cwd: Path) -> list[dict[str, object]]:
    done = aigentflow("audit", "--event", "flag.", "--json", cwd=cwd, env=ENV)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_targeting_rollout_and_split_set_from_the_cli_and_audited(sample_repo: Path) -> None:
    assert flags("get", "enterprise.ssoRequired", "--tenant", "acme", cwd=sample_repo)[1].startswith(
        "enterprise.ssoRequired = false  (STATIC; preset mvp)")
    code, _out, err = flags("set", "enterprise.ssoRequired", "true", "--rule", "tenant=acme,globex", cwd=sample_repo)
    assert code == 0, err
    got = json.loads(flags("get", "enterprise.ssoRequired", "--tenant", "globex", "--json", cwd=sample_repo)[1])
    assert (got["value"], got["reason"], got["variant"]) == (True, "TARGETING_MATCH", "rule-1")
    other = json.loads(flags("get", "enterprise.ssoRequired", "--tenant", "initech", "--json", cwd=sample_repo)[1])
    assert (other["value"], other["reason"]) == (False, "DEFAULT")

    assert flags("set", "features.newPlanner", "false", "--type", "boolean", cwd=sample_repo)[0] == 0
    assert flags("rollout", "features.newPlanner", "30", cwd=sample_repo)[0] == 0
    at_30 = {user: json.loads(flags("get", "features.newPlanner", "--user", user, "--json", cwd=sample_repo)[1])
             for user in ("u1", "u2", "u3", "u4", "u5", "u6")}
    assert flags("rollout", "features.newPlanner", "80", cwd=sample_repo)[0] == 0
    for user, before in at_30.items():
        after = json.loads(flags("get", "features.newPlanner", "--user", user, "--json", cwd=sample_repo)[1])
        if before["value"]:
            assert after["value"] is True and after["reason"] == "SPLIT"

    assert flags("set", "ui.theme", "classic", "--type", "string", cwd=sample_repo)[0] == 0
    assert flags("split", "ui.theme", "classic=50", "dark=50", cwd=sample_repo)[0] == 0
    first = json.loads(flags("get", "ui.theme", "--user", "bob", "--json", cwd=sample_repo)[1])
    again = json.loads(flags("get", "ui.theme", "--user", "bob", "--json", cwd=sample_repo)[1])
    assert first["reason"] == "SPLIT" and first["variant"] == again["variant"] == first["value"]

    listed = {row["key"]: row for row in json.loads(flags("list", "--json", "--tenant", "acme", cwd=sample_repo)[1])}
    assert listed["agents.analyst"]["why"] == "preset"
    assert listed["enterprise.ssoRequired"]["why"] == "targeting (rule-1)"
    assert listed["ui.theme"]["type"] == "string" and listed["ui.theme"]["why"].startswith("split (")
    assert (listed["evolution.maxGeneratedAgents"]["type"], listed["evolution.maxGeneratedAgents"]["value"]) == \
        ("integer", 5)
    text = flags("list", cwd=sample_repo)[1]
    assert "ui.theme" in text and "string" in text

    entries = audit_entries(sample_repo)
    assert [(e["data"]["key"], e["data"]["change"]) for e in entries] == [
        ("enterprise.ssoRequired", "rule tenant=acme,globex"), ("features.newPlanner", "default"),
        ("features.newPlanner", "rollout"), ("features.newPlanner", "rollout"), ("ui.theme", "default"),
        ("ui.theme", "split")]
    assert all(e["data"]["by"] == "alice" for e in entries)
    assert entries[3]["data"]["old"] == {"percent": 30, "value": True}
    assert entries[3]["data"]["new"] == {"percent": 80, "value": True}
    shown = aigentflow("audit", cwd=sample_repo, env=ENV).stdout
    assert "alice changed features.newPlanner rollout: {\"percent\": 30, \"value\": true} -> " \
           "{\"percent\": 80, \"value\": true}" in shown

    assert flags("unset", "ui.theme", cwd=sample_repo)[0] == 0
    assert "ui.theme" not in (sample_repo / ".aigentflow" / "flags.toml").read_text()
    assert audit_entries(sample_repo)[-1]["data"]["change"] == "definition"


@pytest.mark.parametrize(("args", "message"), [
    (("set", "agents.reviewr", "true"), "unknown feature flag 'agents.reviewr'; did you mean agents.reviewer"),
    (("set", "evolution.maxGeneratedAgents", "lots"), "'lots' is not a whole number"),
    (("set", "agents.reviewer", "maybe"), "'maybe' is not true or false"),
    (("set", "agents.reviewer", "1", "--type", "integer"), "is a boolean flag; --type integer does not fit"),
    (("rollout", "agents.reviewer", "150"), "a rollout percentage is a number from 0 to 100, not '150'"),
    (("rollout", "agents.reviewer", "half"), "not 'half'"),
    (("set", "agents.reviewer", "true", "--rule", "tenant"), "--rule 'tenant' is not ATTRIBUTE=VALUE"),
    (("set", "agents.reviewer", "true", "--rule", "team=a"), "a rule cannot match on 'team'"),
    (("set", "agents.reviewer", "true", "--rule", "tenant=a,"), "is not ATTRIBUTE=VALUE"),
    (("split", "agents.reviewer", "true=x"), "is not VARIANT=WEIGHT"),
    (("get", "agents.reviewer", "--as", "integer"), "TYPE_MISMATCH: flag 'agents.reviewer' is a boolean flag"),
    (("get", "agents.reviewr"), "FLAG_NOT_FOUND: unknown feature flag 'agents.reviewr'; did you mean"),
])
def test_bad_input_exits_2_with_a_clear_message_and_changes_nothing(sample_repo: Path, args: tuple[str, ...],
                                                                    message: str) -> None:
    flags_file = sample_repo / ".aigentflow" / "flags.toml"
    flags_file.write_text('# ours\n[flags."agents.reviewer"]\nrules = [{ when = { tenant = "acme" }, value = true }]\n')
    before = flags_file.read_text()
    code, out, err = flags(*args, cwd=sample_repo)
    assert code == 2, (out, err)
    assert message in err
    assert "Traceback" not in err
    assert flags_file.read_text() == before
    assert audit_entries(sample_repo) == []


def test_a_run_records_the_flags_its_context_decided(sample_repo: Path) -> None:
    from aigentflow.project.paths import ProjectPaths
    from aigentflow.run.runner import plan_run, record_run
    from aigentflow.store.sqlite import SQLiteRunStore
    from tests.conftest import DEMO_REQUEST

    assert aigentflow("tenants", "create", "acme", cwd=sample_repo, env=ENV).returncode == 0  # runs need it registered
    assert aigentflow("config", "set", "run.tenant", "acme", cwd=sample_repo, env=ENV).returncode == 0
    assert flags("set", "enterprise.ssoRequired", "true", "--rule", "tenant=acme", cwd=sample_repo)[0] == 0
    paths = ProjectPaths(sample_repo)
    run = record_run(paths, plan_run(paths, DEMO_REQUEST, {}))
    store = SQLiteRunStore(paths.database)
    try:
        recorded = store.get_run(run.id)
        created = next(e for e in store.audit(run.id) if e.event == "run.created")
    finally:
        store.close()
    assert recorded.flags["enterprise.ssoRequired"] is True
    assert recorded.flags["agents.analyst"] is True and recorded.flags["agents.reviewer"] is False
    assert created.data["flags"] == {"enterprise.ssoRequired": {"variant": "rule-1", "reason": "TARGETING_MATCH"}}
    shown = aigentflow("status", run.id, "--json", cwd=sample_repo, env=ENV)
    assert shown.returncode == 0
