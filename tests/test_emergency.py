"""The rollout plan's four emergency switches as an operator uses them: `aigentflow admin emergency --X` sets a
switch (each CLI call is a new process: it is persisted), `admin emergency` (text and --json), `aigentflow
status` and the web UI show it, it holds until its opposite option lifts it, and each change is audited."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from aigentflow.project.paths import ProjectPaths
from aigentflow.store.sqlite import SQLiteRunStore
from aigentflow.tenants.mode import single_tenant_mode
from tests.conftest import aigentflow
from tests.test_engine import start
from tests.ui_support import ui_server

SWITCHES = {  # key: (option that sets it, option that lifts it, its name in the output)
    "pause_all": ("--pause-all", "--resume-all", "pause-all"),
    "disable_generated_agents": ("--disable-generated-agents", "--enable-generated-agents", "disable-generated-agents"),
    "disable_evolution": ("--disable-evolution", "--enable-evolution", "disable-evolution"),
    "single_tenant_mode": ("--single-tenant-mode", "--multi-tenant-mode", "single-tenant-mode"),
}


def shown(repo: Path) -> dict:
    done = aigentflow("admin", "emergency", "--json", cwd=repo)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("key", list(SWITCHES))
def test_each_switch_is_persisted_shown_everywhere_and_lifted_only_by_its_opposite(sample_repo: Path, key: str) -> None:
    on, off, name = SWITCHES[key]
    start(sample_repo)  # a recorded run: `status` reports on it
    assert shown(sample_repo) == {"pause_all": False, "disable_generated_agents": False, "disable_evolution": False,
                                  "evolution_disabled_reason": None, "single_tenant_mode": False}
    quiet = aigentflow("status", cwd=sample_repo)
    assert quiet.returncode == 0 and "Emergency" not in quiet.stdout

    done = aigentflow("admin", "emergency", on, "--reason", "drill 7", cwd=sample_repo)
    assert done.returncode == 0, done.stderr
    lines = {line.split(" is ")[0]: line for line in done.stdout.splitlines()}
    assert set(lines) == {s[2] for s in SWITCHES.values()}, "all four switches shown"
    assert lines[name].startswith(f"{name} is ON") and f"`aigentflow admin emergency {off}`" in lines[name]
    assert all(line.endswith(" is off") for n, line in lines.items() if n != name)

    # a new process reads it back: text, JSON, status (text and JSON)
    state = shown(sample_repo)
    assert state[key] is True and [k for k in SWITCHES if state[k]] == [key]
    status = aigentflow("status", cwd=sample_repo)
    assert status.returncode == 0, status.stderr
    banner = [line for line in status.stdout.splitlines() if line.startswith("Emergency")]
    assert len(banner) == 1 and banner[0].startswith(f"Emergency {name} is ON") and off in banner[0]
    report = json.loads(aigentflow("status", "--json", cwd=sample_repo).stdout)
    assert report["emergency"][key] is True and sum(report["emergency"][k] for k in SWITCHES) == 1
    assert report["emergency_pause_all"] is (key == "pause_all")

    # other commands do not lift it, nor does setting another switch and lifting that one
    other = next(k for k in SWITCHES if k != key)
    assert aigentflow("admin", "emergency", SWITCHES[other][0], cwd=sample_repo).returncode == 0
    assert aigentflow("admin", "emergency", SWITCHES[other][1], cwd=sample_repo).returncode == 0
    assert aigentflow("flags", "list", cwd=sample_repo).returncode == 0
    assert shown(sample_repo)[key] is True

    lifted = aigentflow("admin", "emergency", off, cwd=sample_repo)
    assert lifted.returncode == 0 and f"{name} is off" in lifted.stdout
    assert not any(shown(sample_repo)[k] for k in SWITCHES)
    assert "Emergency" not in aigentflow("status", cwd=sample_repo).stdout

    store = SQLiteRunStore(ProjectPaths(sample_repo).database)
    try:
        changes = [e.data for e in store.audit() if e.event == "admin.emergency" and key in e.data]
    finally:
        store.close()
    assert [c[key] for c in changes] == [True, False]
    assert changes[0].get("reason") == "drill 7"


def test_single_tenant_mode_is_the_tenants_mode_switch_and_shows_without_runs(sample_repo: Path) -> None:
    assert aigentflow("admin", "emergency", "--single-tenant-mode", cwd=sample_repo).returncode == 0
    store = SQLiteRunStore(ProjectPaths(sample_repo).database)
    try:
        assert single_tenant_mode(store) is True, "the switch the runner and the HTTP API read"
    finally:
        store.close()
    status = aigentflow("status", cwd=sample_repo)  # no run yet: the switch still shows, then the error
    assert status.returncode == 2 and "no runs yet" in status.stderr
    assert "single-tenant-mode is ON" in status.stdout and "--multi-tenant-mode" in status.stdout


def test_contradicting_options_are_refused_and_change_nothing(sample_repo: Path) -> None:
    for on, off, _ in SWITCHES.values():
        refused = aigentflow("admin", "emergency", on, off, cwd=sample_repo)
        assert refused.returncode == 2 and "contradict" in refused.stderr and on in refused.stderr
    assert not any(shown(sample_repo)[k] for k in SWITCHES)


def test_web_ui_shows_a_banner_of_the_switches_that_are_on(sample_repo: Path) -> None:
    with ui_server(sample_repo) as url:
        def page(path: str) -> str:
            with urllib.request.urlopen(url + path, timeout=30) as response:
                return response.read().decode()

        assert 'id="emergency-switches"' not in page("/")
        for key in ("pause_all", "single_tenant_mode"):
            assert aigentflow("admin", "emergency", SWITCHES[key][0], cwd=sample_repo).returncode == 0
        for path in ("/", "/dashboards", "/compliance"):
            html = page(path)
            assert 'id="emergency-switches"' in html, path
            assert 'id="switch-pause_all"' in html and 'id="switch-single_tenant_mode"' in html
            assert 'id="switch-disable_evolution"' not in html
            assert "--multi-tenant-mode" in html and "--resume-all" in html
        assert aigentflow("admin", "emergency", "--resume-all", "--multi-tenant-mode", cwd=sample_repo).returncode == 0
        assert 'id="emergency-switches"' not in page("/")


def test_pause_all_stops_every_tenants_runs_not_only_the_operators(sample_repo: Path) -> None:
    """The switches are the operator's: set once, they hold for runs of every tenant."""
    from tests.test_engine import drive

    assert aigentflow("tenants", "create", "acme", cwd=sample_repo).returncode == 0
    paths, run, spec = start(sample_repo, **{"run.tenant": "acme"})
    assert run.tenant_id == "acme"
    done = aigentflow("admin", "emergency", "--pause-all", cwd=sample_repo)
    assert done.returncode == 0, done.stderr
    from aigentflow.exceptions import RunPaused

    with pytest.raises(RunPaused, match="emergency pause-all is on"):
        drive(paths, run, spec)
    with SQLiteRunStore(ProjectPaths(sample_repo).database) as store:
        assert store.get_run(run.id).state == "PAUSED"
        reasons = [t.reason or "" for t in store.transitions(run.id)]
    assert any("emergency pause-all" in reason for reason in reasons)
    resumed = aigentflow("resume", run.id, cwd=sample_repo)
    assert resumed.returncode != 0 and "pause-all is on" in resumed.stderr + resumed.stdout
