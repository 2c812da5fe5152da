"""`aigentflow compliance` as a user meets it: a project with a real run (the engine in-process, the replay
model), the CLI as a subprocess; the HTML report and the `/compliance` page rendered by headless Chromium
and read as a person would."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import aigentflow
from tests.ui_support import (
    GREEN,
    RED,
    count_near,
    drive_run,
    dump_dom,
    needs_chromium,
    new_project,
    not_blank,
    parse,
    screenshot,
    ui_server,
    user_config_env,
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("compliance")
    with user_config_env(base / "user-config"):
        repo = new_project(base / "project")
        drive_run(repo)
    return repo


def status(repo: Path) -> dict:
    done = aigentflow("compliance", "status", "--json", cwd=repo)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def by_id(data: dict) -> dict[str, dict]:
    return {c["id"]: c for c in data["controls"]}


def test_status_checks_every_control_against_what_the_project_records(project) -> None:
    data = status(project)
    controls = by_id(data)
    assert len(controls) >= 10 and all(c["criteria"] for c in controls.values())
    assert all(c["state"] in ("pass", "fail", "no evidence") and c["reason"] for c in controls.values())
    assert controls["AUDIT-LOG"]["state"] == "pass" and "without gaps" in controls["AUDIT-LOG"]["reason"]
    assert controls["SECRETS"]["state"] == "pass"
    assert controls["STORE-INTEGRITY"]["state"] == "pass" and "CC8.1" in controls["CODE-REVIEW"]["criteria"]
    assert controls["CODE-REVIEW"]["state"] == "fail", "the mvp preset has no reviewer"
    assert controls["DEPENDENCY-SCAN"]["state"] == "no evidence"
    decided = data["counts"]["pass"] + data["counts"]["fail"]
    assert data["score_percent"] == round(100 * data["counts"]["pass"] / decided, 1)
    assert data["score_with_no_evidence_percent"] == round(100 * data["counts"]["pass"] / len(controls), 1)
    assert data["target_percent"] == 95.0 and data["meets_target"] is False

    text = aigentflow("compliance", "status", cwd=project)
    assert text.returncode == 0 and "Compliance score:" in text.stdout and "target > 95%" in text.stdout


def test_configuration_and_a_deps_scan_turn_controls_to_pass(project, tmp_path) -> None:
    repo = tmp_path / "copy"
    import shutil

    shutil.copytree(project, repo, symlinks=True)
    for key, value in (("flags.preset", "v2"), ("gdpr.retention_traces_days", "30")):
        assert aigentflow("config", "set", key, value, cwd=repo).returncode == 0
    assert aigentflow("deps", "scan", "--project", cwd=repo).returncode == 0
    controls = by_id(status(repo))
    for name in ("APPROVAL-GATE", "CODE-REVIEW", "RETENTION", "DEPENDENCY-SCAN"):
        assert controls[name]["state"] == "pass", controls[name]
    # a deleted audit entry is a gap: the log is no longer append-only
    with sqlite3.connect(repo / ".aigentflow" / "state.db") as conn:
        conn.execute("DELETE FROM audit WHERE seq = 2")
    assert by_id(status(repo))["AUDIT-LOG"]["state"] == "fail"


def test_evidence_is_collected_with_hashes_once(project) -> None:
    first = aigentflow("compliance", "evidence", "collect", "--json", cwd=project)
    assert first.returncode == 0, first.stderr
    added = json.loads(first.stdout)["added"]
    assert any(item["kind"] == "audit_export" for item in added)
    for item in added:
        exported = project / ".aigentflow" / "compliance" / "evidence" / f"{item['sha256']}.json"
        assert hashlib.sha256(exported.read_bytes()).hexdigest() == item["sha256"]
    again = json.loads(aigentflow("compliance", "evidence", "collect", "--json", cwd=project).stdout)
    assert again["added"] == [] and again["seen"] == len(added), "the same content is not recorded twice"
    listed = json.loads(aigentflow("compliance", "evidence", "list", "--json", cwd=project).stdout)
    assert [e["sha256"] for e in listed] == [e["sha256"] for e in added]
    bad = aigentflow("compliance", "evidence", "list", "--kind", "selfies", cwd=project)
    assert bad.returncode == 2 and "audit_export" in bad.stderr


def test_attestations_expire_and_bad_input_changes_nothing(project) -> None:
    before = aigentflow("compliance", "attestations", "--json", cwd=project).stdout
    for args, says in ((("NO-SUCH",  "--by", "Ana"), "no control 'NO-SUCH'"),
                       (("KILL-SWITCHES", "--by", "Ana", "--expires", "31/12/2027"), "YYYY-MM-DD"),
                       (("KILL-SWITCHES",), "--by NAME")):
        done = aigentflow("compliance", "attest", *args, cwd=project)
        assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert aigentflow("compliance", "attestations", "--json", cwd=project).stdout == before

    done = aigentflow("compliance", "attest", "kill-switches", "--by", "Ana Auditor", "--expires", "2099-01-01",
                      "--note", "pause-all drill", cwd=project)
    assert done.returncode == 0, done.stderr
    kill = by_id(status(project))["KILL-SWITCHES"]
    assert kill["state"] == "pass" and kill["attestation_state"] == "valid" and "Ana Auditor" in kill["reason"]
    assert aigentflow("compliance", "attest", "KILL-SWITCHES", "--by", "Bo", "--expires", "2020-01-01",
                      cwd=project).returncode == 0
    kill = by_id(status(project))["KILL-SWITCHES"]
    assert kill["state"] == "no evidence" and kill["attestation_state"] == "expired" and "expired" in kill["reason"]
    listed = json.loads(aigentflow("compliance", "attestations", "--json", cwd=project).stdout)
    assert [(a["attested_by"], a["expired"]) for a in listed][-2:] == [("Ana Auditor", False), ("Bo", True)]
    assert "EXPIRED 2020-01-01" in aigentflow("compliance", "status", cwd=project).stdout


@needs_chromium
def test_report_renders_controls_evidence_attestations_and_score(project, tmp_path) -> None:
    aigentflow("compliance", "evidence", "collect", cwd=project)
    output = tmp_path / "audit.html"
    done = aigentflow("compliance", "report", "--output", str(output), cwd=project)
    assert done.returncode == 0 and str(output) in done.stdout, done.stderr
    page = parse(dump_dom(output.as_uri()))
    rows = page.by_id("controls").find_all("tr")[1:]
    data = status(project)
    assert len(rows) == len(data["controls"])
    assert "Compliance score" in page.by_id("score").text and "95%" in page.by_id("score").text
    evidence_text = page.by_id("evidence").text
    listed = json.loads(aigentflow("compliance", "evidence", "list", "--json", cwd=project).stdout)
    assert listed and all(item["sha256"] in evidence_text for item in listed)
    assert "NO" not in [row.find_all("td")[-1].text for row in page.by_id("evidence").find_all("tr")[1:]]
    assert "(expired)" in page.by_id("attestations").text
    image = screenshot(output.as_uri(), tmp_path / "report.png")
    assert not_blank(image)
    assert count_near(image, GREEN, tolerance=10) > 200 and count_near(image, RED, tolerance=10) > 200

    assert aigentflow("compliance", "report", "--output", str(tmp_path / "x.pdf"), cwd=project).returncode == 2


@needs_chromium
def test_compliance_page_shows_the_same_table_and_score(project, tmp_path) -> None:
    data = status(project)
    with ui_server(project) as url:
        page = parse(dump_dom(url + "/compliance"))
        assert page.by_id("nav-compliance").attrs["href"] == "/compliance"
        rows = page.by_id("compliance-controls").find_all("tr")[1:]
        states = {row.attrs["data-control"]: row.find_all(cls="control-state")[0].text for row in rows}
        assert states == {c["id"]: c["state"] for c in data["controls"]}
        assert f"{data['score_percent']:.1f}%" in page.by_id("compliance-score").text
        image = screenshot(url + "/compliance", tmp_path / "compliance.png")
    assert not_blank(image)
    assert count_near(image, GREEN, tolerance=10) > 200, "passing controls are green"
    assert count_near(image, RED, tolerance=10) > 200, "failing controls are red"


def test_status_and_page_import_neither_ray_nor_litellm(project) -> None:
    import subprocess
    import sys

    from tests.conftest import cli_env

    code = f"""
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from aigentflow.cli.main import main
from aigentflow.project.paths import ProjectPaths
from evolution.ui.app import create_app
code = TestClient(create_app(ProjectPaths(Path({str(project)!r})))).get('/compliance').status_code
print(json.dumps([code, 'ray' in sys.modules, 'litellm' in sys.modules]))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120,
                          check=False, cwd=project)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [200, False, False]
    timed = subprocess.run([sys.executable, "-X", "importtime", "-m", "aigentflow", "compliance", "status"],
                           capture_output=True, text=True, env=cli_env(), timeout=120, check=False, cwd=project)
    assert timed.returncode == 0, timed.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in timed.stderr.splitlines()}
    assert not imported & {"ray", "litellm"}
