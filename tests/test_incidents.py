"""`aigentflow incidents` as an operator runs it: planted conditions for every rule detected (once: detection
is idempotent), classified by severity, alerted through a real local webhook, Slack-style receiver and SMTP
server (retries, dedup, silences), acked and resolved with a timeline; runbooks shown and run; bad input
exits 2. Real stores, real traces, the CLI as a subprocess."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from aigentflow.store.records import StepUsage
from aigentflow.store.sqlite import SQLiteRunStore
from tests.conftest import aigentflow, cli_env
from tests.incident_receivers import closed_port, http_receiver, smtp_receiver

TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
HOOK_SECRET = "hooksecret-9f8e7d6c5b4a"
ENV = cli_env(AIGENTFLOW_USER="alice", INCIDENT_HOOK_URL="", ALERT_HOOK_TOKEN=HOOK_SECRET)


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    done = aigentflow(*args, cwd=cwd, env=env or ENV)
    return done.returncode, done.stdout, done.stderr


def detect(cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    code, out, err = run_cli("incidents", "detect", "--json", cwd=cwd, env=env)
    assert code == 0, err
    return json.loads(out)


def listed(cwd: Path, *args: str) -> list[dict[str, Any]]:
    code, out, err = run_cli("incidents", "list", "--json", *args, cwd=cwd)
    assert code == 0, err
    return json.loads(out)


def shown(cwd: Path, incident: int | str) -> dict[str, Any]:
    code, out, err = run_cli("incidents", "show", str(incident), "--json", cwd=cwd)
    assert code == 0, err
    return json.loads(out)


def finished_runs(repo: Path, completed: int, failed: int, tenant: str = "default") -> list[str]:
    with SQLiteRunStore(repo / ".aigentflow" / "state.db") as store:
        project = store.get_project()["id"]
        ids = []
        for state in ["COMPLETED"] * completed + ["FAILED"] * failed:
            run = store.create_run(project_id=project, request="r", model="replay", settings={}, flags={},
                                   tenant_id=tenant)
            store.transition(run.id, expected_version=0, to_state=state, return_to=None,
                             event="FAIL" if state == "FAILED" else "ADVANCE", terminal=True,
                             error="model provider said 503" if state == "FAILED" else None)
            ids.append(run.id)
        return ids


def failed_steps(repo: Path, role: str, times: int, error: str = "boom") -> str:
    with SQLiteRunStore(repo / ".aigentflow" / "state.db") as store:
        project = store.get_project()["id"]
        run = store.create_run(project_id=project, request="r", model="replay", settings={}, flags={})
        for _ in range(times):
            step = store.begin_step(run.id, "build", role, "BUILDING", new_attempt=True)
            store.fail_step(step, error, StepUsage())
        return run.id


def write_spans(repo: Path, spans: list[dict[str, Any]]) -> None:
    from aigentflow.tracing.writer import SegmentWriter

    writer = SegmentWriter(repo / ".aigentflow" / "traces", None)
    for span in spans:
        writer.add(span)
    writer.flush()
    writer.close()


def plant_everything(repo: Path) -> None:
    """One condition for each built-in rule."""
    from aigentflow.tracing.spans import command_span, make_span
    from evolution import db as evolution_db
    from evolution.rollout.canary import _INCIDENTS

    finished_runs(repo, completed=2, failed=4)  # error-rate-spike: 4 of 6 runs failed
    failed_steps(repo, "backend_developer", 3)  # crash-loop: the role failed 3 times
    sandboxed = failed_steps(repo, "tester", 1, error="working directory '../..' resolves to /, outside the "
                                                      "sandbox root /w: commands run only inside the worktree")
    with evolution_db.connect(repo, _INCIDENTS) as db:  # canary-regression, as the evolution loop records it
        db.execute("INSERT INTO incidents (role, candidate, incumbent, percent, reason, evidence_json, at) VALUES "
                   "('analyst', 'v7', 'builtin', 25, 'success rate 40% vs 95%', '{}', ?)", (evolution_db.now_iso(),))
    with SQLiteRunStore(repo / ".aigentflow" / "state.db") as store:
        for _ in range(2):  # quota-exhausted
            store.append_audit("quota.exhausted", None, {"quota": "model_calls", "limit": 100}, tenant_id="acme")
        store.append_audit("run.note", None, {"output": f"export GITHUB_TOKEN={TOKEN[:3]}" + TOKEN[3:]})  # secret
        store.append_audit("secret.withheld", None, {"paths": ["config/.env"]})
    command = {"program": "sh", "hash": "ab", "exit_code": 0, "duration_s": 0.2, "leftover_processes": 2,
               "env_withheld": 0}
    write_spans(repo, [
        command_span(command, run_id=sandboxed, kind="test"),  # sandbox-escape-attempt: processes left behind
        make_span("agent tester", "agent", run_id=sandboxed, attributes={"note": "key=[REDACTED]"}),
    ])
    code, _, err = run_cli("admin", "emergency", "--disable-generated-agents", cwd=repo)  # kill-switch-pulled
    assert code == 0, err


def test_every_rule_detects_its_planted_condition_once_with_its_severity(sample_repo: Path) -> None:
    assert detect(sample_repo)["opened"] == []
    plant_everything(sample_repo)
    report = detect(sample_repo)
    assert report["errors"] == []
    found = {(i["rule"], i["severity"]) for i in listed(sample_repo)}
    assert found == {
        ("error-rate-spike", "SEV2"),  # 4/6 = 67% of runs: past SEV2's 50%
        ("crash-loop", "SEV2"),
        ("canary-regression", "SEV3"),  # rolled back at 25%: below SEV2's 50
        ("quota-exhausted", "SEV2"),
        ("kill-switch-pulled", "SEV3"),  # disable-generated-agents
        ("sandbox-escape-attempt", "SEV2"),
        ("secret-found", "SEV1"),  # unredacted in the store
        ("secret-found", "SEV3"),  # caught by the redactor in a trace
        ("secret-found", "SEV4"),  # withheld from a prompt
    }
    quota = listed(sample_repo, "--rule", "quota-exhausted")[0]
    assert quota["tenant_id"] == "acme" and quota["facts"]["refusals"] == 2

    again = detect(sample_repo)  # nothing new: nothing changes
    assert again["opened"] == again["redetected"] == again["escalated"] == []
    assert all(i["count"] == 1 for i in listed(sample_repo))

    finished_runs(sample_repo, completed=0, failed=14)  # more failures: 18 of 20
    third = detect(sample_repo)
    spike = listed(sample_repo, "--rule", "error-rate-spike")[0]
    assert f"INC-{spike['id']}" in third["escalated"]
    assert (spike["count"], spike["severity"]) == (2, "SEV1")
    kinds = [e["kind"] for e in shown(sample_repo, spike["id"])["timeline"]]
    assert kinds == ["detected", "escalated"]

    everything = json.dumps([shown(sample_repo, i["id"]) for i in listed(sample_repo)])
    assert TOKEN not in everything and TOKEN[4:] not in everything

    code, out, _ = run_cli("incidents", "list", "--severity", "SEV1", cwd=sample_repo)
    assert code == 0 and "secret-found" in out and "crash-loop" not in out


def routes_toml(base: str, port: int, dead: int) -> str:
    return f"""
[[incidents.routes]]
name = "ops-webhook"
type = "webhook"
url_env = "INCIDENT_HOOK_URL"
headers_env = {{ Authorization = "ALERT_HOOK_TOKEN" }}
min_severity = "SEV3"

[[incidents.routes]]
name = "slack"
type = "slack"
url = "{base}/slack"
severities = ["SEV1", "SEV2"]

[[incidents.routes]]
name = "pager-mail"
type = "email"
host = "127.0.0.1"
port = {port}
from = "aigentflow@example.invalid"
to = ["oncall@example.invalid"]
rules = ["kill-switch-pulled"]

[[incidents.routes]]
name = "dead"
type = "webhook"
url = "http://127.0.0.1:{dead}/hook"
retries = 2
backoff_s = 0.01
timeout_s = 1
"""


def test_alerts_reach_webhook_slack_and_email_once_and_a_dead_route_is_retried_then_recorded(
        sample_repo: Path) -> None:
    with http_receiver() as (base, posts), smtp_receiver() as (port, mails):
        secret_url = f"{base}/hooks/{HOOK_SECRET}"
        env = {**ENV, "INCIDENT_HOOK_URL": secret_url}
        config = sample_repo / ".aigentflow" / "config.toml"
        config.write_text(config.read_text() + routes_toml(base, port, closed_port()))
        assert run_cli("admin", "emergency", "--pause-all", cwd=sample_repo)[0] == 0

        report = detect(sample_repo, env)
        (incident,) = listed(sample_repo)
        assert incident["severity"] == "SEV2" and incident["rule"] == "kill-switch-pulled"
        results = {d["route"]: (d["result"], d["attempts"]) for d in report["deliveries"]}
        assert results == {"ops-webhook": ("delivered", 1), "slack": ("delivered", 1),
                           "pager-mail": ("delivered", 1), "dead": ("failed", 3)}  # retries are bounded

        hook = next(p for p in posts if p["path"].startswith("/hooks/"))
        assert hook["body"]["incident"] == f"INC-{incident['id']}" and hook["body"]["severity"] == "SEV2"
        assert hook["headers"]["Authorization"] == HOOK_SECRET
        slack = next(p for p in posts if p["path"] == "/slack")["body"]
        assert slack["text"].startswith("[SEV2] INC-") and slack["blocks"][0]["type"] == "header"
        (mail,) = mails
        assert mail["Subject"].startswith("[SEV2] INC-") and mail["To"] == "oncall@example.invalid"
        assert "aigentflow incidents runbook" in mail.get_payload()

        timeline = shown(sample_repo, incident["id"])["timeline"]
        dead = [e for e in timeline if e["route"] == "dead"]
        assert [e["result"] for e in dead] == ["sending", "attempt-failed", "attempt-failed", "attempt-failed",
                                               "failed"]
        assert "unreachable" in dead[-1]["detail"]
        stored = (sample_repo / ".aigentflow" / "state.db").read_bytes()
        assert HOOK_SECRET.encode() not in stored and HOOK_SECRET not in json.dumps(timeline)

        second = detect(sample_repo, env)  # dedup: delivered routes stay quiet; the dead one tries again
        assert {d["route"] for d in second["deliveries"]} == {"dead"}
        assert len(posts) == 2 and len(mails) == 1

        code, _, err = run_cli("incidents", "ack", f"INC-{incident['id']}", cwd=sample_repo)
        assert code == 0, err
        assert detect(sample_repo, env)["deliveries"] == []  # acknowledged: someone is on it


def test_a_silenced_rule_records_but_does_not_alert(sample_repo: Path) -> None:
    with http_receiver() as (base, posts):
        config = sample_repo / ".aigentflow" / "config.toml"
        config.write_text(config.read_text() + f'\n[[incidents.routes]]\nname = "hook"\ntype = "webhook"\n'
                                                f'url = "{base}/h"\n')
        code, out, err = run_cli("incidents", "silence", "--rule", "kill-switch-pulled", "--for", "2h",
                                 "--reason", "maintenance", cwd=sample_repo)
        assert code == 0 and "silenced until" in out, err
        assert run_cli("admin", "emergency", "--pause-all", cwd=sample_repo)[0] == 0
        report = detect(sample_repo)
        assert [d["result"] for d in report["deliveries"]] == ["silenced"] and posts == []
        (incident,) = listed(sample_repo)
        assert "silenced" in [e["kind"] for e in shown(sample_repo, incident["id"])["timeline"]]
        assert run_cli("incidents", "silence", "--rule", "no-such-rule", "--for", "1h", cwd=sample_repo)[0] == 2
        assert run_cli("incidents", "silence", "--rule", "crash-loop", "--for", "soon", cwd=sample_repo)[0] == 2


def test_ack_and_resolve_are_on_the_timeline_and_audited(sample_repo: Path) -> None:
    assert run_cli("admin", "emergency", "--pause-all", cwd=sample_repo)[0] == 0
    detect(sample_repo)
    (incident,) = listed(sample_repo)
    code, out, err = run_cli("incidents", "ack", str(incident["id"]), "--by", "bob", cwd=sample_repo)
    assert code == 0 and "acknowledged by bob" in out, err
    code, out, err = run_cli("incidents", "resolve", f"INC-{incident['id']}", "--note", "resumed after the drill",
                             cwd=sample_repo)
    assert code == 0, err
    after = shown(sample_repo, incident["id"])
    assert after["status"] == "resolved" and after["acked_by"] == "bob"
    assert [(e["kind"], e["actor"]) for e in after["timeline"]] == [
        ("detected", None), ("acknowledged", "bob"), ("resolved", "alice")]
    assert after["timeline"][-1]["detail"] == "resumed after the drill"
    code, out, _ = run_cli("audit", "--event", "incident.", "--json", cwd=sample_repo)
    assert [(e["event"], e["data"]["by"]) for e in json.loads(out)] == [
        ("incident.acknowledged", "bob"), ("incident.resolved", "alice")]
    assert listed(sample_repo, "--status", "open") == []
    code, _, err = run_cli("incidents", "resolve", str(incident["id"]), cwd=sample_repo)
    assert code == 2 and "already resolved" in err
    assert detect(sample_repo)["opened"] == []  # the same evidence does not reopen it
    assert run_cli("incidents", "show", "INC-999", cwd=sample_repo)[0] == 2
    assert run_cli("incidents", "list", "--status", "sleeping", cwd=sample_repo)[0] == 2


def test_runbooks_shown_and_an_executable_step_run_and_recorded(sample_repo: Path) -> None:
    assert run_cli("admin", "emergency", "--pause-all", cwd=sample_repo)[0] == 0
    detect(sample_repo)
    (incident,) = listed(sample_repo)
    code, out, err = run_cli("incidents", "runbook", f"INC-{incident['id']}", "--json", cwd=sample_repo)
    assert code == 0, err
    book = json.loads(out)
    assert book["id"] == "kill-switch-pulled" and book["steps"][0]["commands"] == [["admin", "emergency"]]
    assert book["steps"][2]["commands"] == [["incidents", "ack", f"INC-{incident['id']}"]]
    assert not book["steps"][3]["executable"]

    code, out, err = run_cli("incidents", "runbook", f"INC-{incident['id']}", "--run-step", "3", "--yes",
                             cwd=sample_repo)
    assert code == 0 and "acknowledged by alice" in out, err
    after = shown(sample_repo, incident["id"])
    assert after["status"] == "acknowledged"
    assert after["timeline"][-1]["kind"] == "runbook-step" and "exited 0" in after["timeline"][-1]["detail"]
    assert run_cli("incidents", "runbook", f"INC-{incident['id']}", "--run-step", "4", "--yes",
                   cwd=sample_repo)[0] == 2  # a person's step
    assert run_cli("incidents", "runbook", f"INC-{incident['id']}", "--run-step", "1", cwd=sample_repo)[0] == 2

    own = sample_repo / ".aigentflow" / "runbooks"
    own.mkdir()
    (own / "pause.md").write_text("---\nrules: kill-switch-pulled\n---\n# Ours\n\n1. Check.\n   ```aigentflow\n"
                                  "   admin emergency --json\n   ```\n")
    code, out, _ = run_cli("incidents", "runbook", f"INC-{incident['id']}", "--json", cwd=sample_repo)
    assert json.loads(out)["id"] == "pause"  # the project's runbook wins
    (own / "broken.md").write_text("---\nrules: crash-loop\n---\n1. One\n2. Two\n   ```aigentflow\n   runs\n")
    code, _, err = run_cli("incidents", "runbook", "crash-loop", cwd=sample_repo)
    assert code == 2 and "broken.md" in err and "never closed" in err
    (own / "broken.md").write_text("# no front matter\n1. x\n")
    code, _, err = run_cli("incidents", "runbook", "crash-loop", cwd=sample_repo)
    assert code == 2 and "front matter" in err


def test_bad_rules_and_routes_exit_2_naming_what_is_wrong(sample_repo: Path) -> None:
    rules = sample_repo / ".aigentflow" / "incidents" / "rules.toml"
    rules.parent.mkdir(parents=True)
    rules.write_text('[[rules]]\nid = "error-rate-spike"\nseverity = "SEV9"\n')
    code, _, err = run_cli("incidents", "detect", cwd=sample_repo)
    assert code == 2 and "SEV9" in err and "error-rate-spike" in err
    rules.write_text('[[rules]]\nid = "mine"\nkind = "astrology"\n')
    code, _, err = run_cli("incidents", "detect", cwd=sample_repo)
    assert code == 2 and "kind" in err
    rules.write_text('[[rules]]\nid = "error-rate-spike"\nthreshold = 0.5\nwindow = "2h"\n'
                     '[[rules]]\nid = "crash-loop"\nenabled = false\n')
    code, out, err = run_cli("incidents", "rules", "--json", cwd=sample_repo)
    assert code == 0, err
    got = {r["id"]: r for r in json.loads(out)["rules"]}
    assert "crash-loop" not in got and (got["error-rate-spike"]["threshold"], got["error-rate-spike"]["window_s"]) \
        == (0.5, 7200)
    rules.unlink()

    config = sample_repo / ".aigentflow" / "config.toml"
    original = config.read_text()
    config.write_text(original + '\n[[incidents.routes]]\nname = "x"\ntype = "webhook"\n')
    code, _, err = run_cli("incidents", "detect", cwd=sample_repo)
    assert code == 2 and "route #1 (x)" in err and "url" in err
    config.write_text(original + '\n[[incidents.routes]]\nname = "m"\ntype = "email"\nhost = "h"\n')
    code, _, err = run_cli("incidents", "detect", cwd=sample_repo)
    assert code == 2 and "from" in err
    config.write_text(original + '\n[[incidents.routes]]\nname = "x"\ntype = "pager"\nurl = "http://h"\n')
    assert run_cli("incidents", "detect", cwd=sample_repo)[0] == 2
    assert run_cli("config", "get", "model.name", cwd=sample_repo)[0] == 0  # the rest of aigentflow reads it as before


def test_run_end_detection_runs_detached_and_records(sample_repo: Path) -> None:
    from aigentflow.incidents.hook import run_finished

    finished_runs(sample_repo, completed=1, failed=5)
    pid = run_finished(str(sample_repo))
    assert pid is not None and pid != os.getpid()  # the run's hook hands detection to a process of its own
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not listed(sample_repo):
        time.sleep(0.5)
    assert [i["rule"] for i in listed(sample_repo)] == ["error-rate-spike"]


def test_incident_commands_never_import_ray_or_litellm(sample_repo: Path) -> None:
    import subprocess
    import sys

    for command in (["detect"], ["list"], ["rules"]):
        probe = subprocess.run([sys.executable, "-X", "importtime", "-m", "aigentflow", "incidents", *command],
                               cwd=sample_repo, capture_output=True, text=True, timeout=60, check=False, env=ENV)
        assert probe.returncode == 0, probe.stderr[-2000:]
        modules = {line.rsplit("|", 1)[-1].strip() for line in probe.stderr.splitlines() if "|" in line}
        assert "ray" not in modules and "litellm" not in modules, command
        assert "aigentflow.cli.incidents_cmd" in modules
