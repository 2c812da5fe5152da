"""The run engine in-process (no Ray): the same engine the Orchestrator actor runs, driven with the
agent classes called directly. Real SQLite, real files, real git; the model is the replay cassette."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actors import agent_class
from aigentflow.cli.main import app
from aigentflow.emergency import PAUSE_ALL
from aigentflow.exceptions import RunFailure, RunPaused, UsageError
from aigentflow.project.paths import ProjectPaths
from aigentflow.run.engine import RunEngine
from aigentflow.run.runner import create_run, engine_options
from aigentflow.store.sqlite import SQLiteRunStore
from tests.conftest import DEMO_REQUEST

OUTPUT_FILES = {"research.md", "work_breakdown.json", "work_breakdown.md", "architecture.md", "summary.md"}


class Interrupted(BaseException):
    """Stands in for the process dying mid-step (not an error the engine handles)."""


def agents_invoker(interrupt_at: str | None = None):
    """Calls the agent classes in-process, as their actors would; can die at one step."""
    agents: dict = {}

    def invoke(role, call):
        if call.step == interrupt_at:
            raise Interrupted(call.step)
        agents.setdefault(role, agent_class(role)())
        return agents[role].run(call, None)

    return invoke


def start(repo: Path, request: str = DEMO_REQUEST, **overrides: str):
    paths = ProjectPaths(repo)
    run, spec = create_run(paths, request, {"model.name": "replay/demo", **overrides})
    return paths, run, spec


def drive(paths, run, spec, invoke=None, *, resume=False, record=None):
    engine = RunEngine(paths, run.id, invoke or agents_invoker(), engine_options(run, spec, record))
    return engine.drive(resume=resume)


def store_of(paths) -> SQLiteRunStore:
    return SQLiteRunStore(paths.database)


def test_mvp_run_writes_each_output_once(sample_repo: Path) -> None:
    paths, run, spec = start(sample_repo)
    final = drive(paths, run, spec)
    assert final.state == "COMPLETED"
    store = store_of(paths)
    assert [t.to_state for t in store.transitions(run.id)] == [
        "CREATED", "ANALYZING", "PLANNING", "ARCHITECTING", "COMPLETED"]
    assert {p.name for p in paths.run_dir(run.id).iterdir()} == OUTPUT_FILES
    assert sorted(a.name for a in store.artifacts(run.id)) == sorted(OUTPUT_FILES)
    steps = {s.step: s for s in store.steps(run.id)}
    assert set(steps) == {"analyze", "plan", "architect"}
    assert steps["plan"].model_calls == 2, "the demo's first plan has a cycle and is retried"
    assert all(s.status == "completed" and s.input_tokens > 0 for s in steps.values())
    plan = json.loads((paths.run_dir(run.id) / "work_breakdown.json").read_text())
    assert [t["id"] for t in plan["tasks"]] == ["T1", "T2", "T3"]
    assert "Due dates" in (paths.run_dir(run.id) / "architecture.md").read_text() or \
        "due date" in (paths.run_dir(run.id) / "architecture.md").read_text()
    summary = (paths.run_dir(run.id) / "summary.md").read_text()
    assert "COMPLETED" in summary and "project_manager" in summary
    events = [a.event for a in store.audit(run.id)]
    assert events[0] == "run.created" and events[-1] == "run.finished"
    assert events.count("model.called") == 4


def test_disabled_agent_state_is_skipped(sample_repo: Path) -> None:
    paths, run, spec = start(sample_repo, **{"flags.agents.architect": "false"})
    assert drive(paths, run, spec).state == "COMPLETED"
    assert [t.to_state for t in store_of(paths).transitions(run.id)] == [
        "CREATED", "ANALYZING", "PLANNING", "COMPLETED"]
    assert not (paths.run_dir(run.id) / "architecture.md").exists()


def test_enabling_a_state_no_active_role_leads_is_refused(sample_repo: Path) -> None:
    # A version of the UI Designer that leads no step, picked by settings: DESIGNING has nobody to run it.
    spec_dir = ProjectPaths(sample_repo).agents_dir / "ui_designer"
    spec_dir.mkdir(parents=True)
    (spec_dir / "2.0.0.toml").write_text("steps = []\n")
    with pytest.raises(UsageError, match=r"DESIGNING.*agents.uiDesigner.*no active role leads its step 'design'"):
        start(sample_repo, **{"flags.agents.uiDesigner": "true", "agents.ui_designer.version": "2.0.0"})
    assert store_of(ProjectPaths(sample_repo)).list_runs() == [], "a refused run is not recorded"


def test_interrupted_step_resumes_under_same_key_and_outputs_exist_once(sample_repo: Path) -> None:
    paths, run, spec = start(sample_repo)
    with pytest.raises(Interrupted):
        drive(paths, run, spec, agents_invoker(interrupt_at="plan"))
    store = store_of(paths)
    assert store.get_run(run.id).state == "PLANNING"
    assert [(s.step, s.status) for s in store.steps(run.id)] == [("analyze", "completed"), ("plan", "started")]
    research_before = (paths.run_dir(run.id) / "research.md").read_text()

    final = drive(paths, store.get_run(run.id), spec, resume=True)
    assert final.state == "COMPLETED"
    steps = store.steps(run.id)
    assert sorted((s.step, s.attempt, s.status) for s in steps) == [
        ("analyze", 1, "completed"), ("architect", 1, "completed"), ("plan", 1, "completed")]
    assert (paths.run_dir(run.id) / "research.md").read_text() == research_before
    assert {p.name for p in paths.run_dir(run.id).iterdir()} == OUTPUT_FILES
    assert len(store.artifacts(run.id)) == len(OUTPUT_FILES)
    analyst_calls = [a for a in store.audit(run.id) if a.event == "model.called" and a.data["role"] == "analyst"]
    assert len(analyst_calls) == 1, "the completed analyze step was not repeated"


def test_emergency_pause_all_stops_at_the_next_boundary_and_resume_completes(sample_repo: Path) -> None:
    paths, run, spec = start(sample_repo)
    store = store_of(paths)
    store.set_control(PAUSE_ALL, True)
    with pytest.raises(RunPaused, match="pause-all"):
        drive(paths, run, spec)
    paused = store.get_run(run.id)
    assert (paused.state, paused.return_to) == ("PAUSED", "CREATED")
    assert store.steps(run.id) == []
    store.set_control(PAUSE_ALL, False)
    assert drive(paths, paused, spec, resume=True).state == "COMPLETED"


def test_pause_is_checked_before_every_model_call(sample_repo: Path) -> None:
    paths, run, spec = start(sample_repo)
    store = store_of(paths)

    def gate() -> None:
        if store.get_control(PAUSE_ALL, False):
            raise RunPaused("emergency pause-all is on")

    def pause_during_plan(call) -> None:
        if call.step == "plan":
            store.set_control(PAUSE_ALL, True)

    agents: dict = {}

    def invoke(role, call):
        pause_during_plan(call)
        agents.setdefault(role, agent_class(role)())
        return agents[role].run(call, gate)

    with pytest.raises(RunPaused):
        drive(paths, run, spec, invoke)
    paused = store.get_run(run.id)
    assert (paused.state, paused.return_to) == ("PAUSED", "PLANNING")
    plan_calls = [a for a in store.audit(run.id) if a.event == "model.called" and a.data["role"] == "project_manager"]
    assert plan_calls == [], "no model call was made once the pause was on"
    store.set_control(PAUSE_ALL, False)
    assert drive(paths, paused, spec, resume=True).state == "COMPLETED"


def _project_cassette(paths: ProjectPaths, name: str, drop_role: str | None = None,
                      replace: dict | None = None) -> None:
    from importlib import resources

    shipped = json.loads((resources.files("aigentflow") / "cassettes" / "demo.json").read_text())
    entries = [e for e in shipped["entries"] if e["role"] != drop_role]
    for entry in entries:
        key = (entry["role"], entry["attempt"])
        if replace and key in replace:
            entry["response"] = replace[key]
    paths.cassettes_dir.mkdir(parents=True, exist_ok=True)
    (paths.cassettes_dir / f"{name}.json").write_text(json.dumps({**shipped, "entries": entries}))


def test_missing_cassette_entry_fails_the_run_clearly_and_keeps_earlier_work(sample_repo: Path) -> None:
    paths = ProjectPaths(sample_repo)
    _project_cassette(paths, "no-architect", drop_role="architect")
    paths, run, spec = start(sample_repo, **{"model.name": "replay/no-architect"})
    with pytest.raises(RunFailure, match="architect"):
        drive(paths, run, spec)
    store = store_of(paths)
    failed = store.get_run(run.id)
    assert failed.state == "FAILED"
    assert "no recorded answer" in failed.error and "architect" in failed.error
    assert {s.step: s.status for s in store.steps(run.id)} == {
        "analyze": "completed", "plan": "completed", "architect": "failed"}
    assert (paths.run_dir(run.id) / "work_breakdown.json").exists()


def test_reply_that_never_matches_the_schema_fails_after_bounded_retries(sample_repo: Path) -> None:
    paths = ProjectPaths(sample_repo)
    _project_cassette(paths, "broken-plan", replace={
        ("project_manager", 1): "this is not JSON at all",
        ("project_manager", 2): {"tasks": "not a list"},
    })
    cassette = json.loads((paths.cassettes_dir / "broken-plan.json").read_text())
    cassette["entries"].append({"role": "project_manager", "step": "plan", "attempt": 3, "response": "{" * 10})
    cassette["match"] = "lenient"  # a script of bad replies: the retries' prompts were never recorded
    (paths.cassettes_dir / "broken-plan.json").write_text(json.dumps(cassette))
    paths, run, spec = start(sample_repo, **{"model.name": "replay/broken-plan"})
    with pytest.raises(RunFailure, match="WorkBreakdown after 3 attempts"):
        drive(paths, run, spec)
    store = store_of(paths)
    assert store.get_run(run.id).state == "FAILED"
    plan = next(s for s in store.steps(run.id) if s.step == "plan")
    assert plan.status == "failed" and plan.model_calls == 3


def test_user_hooks_see_events_and_a_failing_hook_never_breaks_the_run(sample_repo: Path) -> None:
    log = sample_repo.parent / "events.jsonl"
    (sample_repo / ".aigentflow" / "config.toml").write_text(
        f'[[hooks]]\nevent = "run.*"\ncommand = "cat >> {log}; echo >> {log}"\n\n'
        '[[hooks]]\nevent = "run.finished"\ncommand = "echo broken >&2; exit 7"\n'
    )
    paths, run, spec = start(sample_repo)
    assert drive(paths, run, spec).state == "COMPLETED"
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert [e["name"] for e in events if e["name"] == "run.state_changed"][:1] == ["run.state_changed"]
    assert events[-1]["name"] == "run.finished" and events[-1]["run_id"] == run.id
    failures = [a for a in store_of(paths).audit(run.id) if a.event == "hook.failed"]
    assert failures and "exit" in failures[0].data["message"] and "7" in failures[0].data["message"]


def test_record_then_strict_replay_reproduces_the_run(sample_repo: Path) -> None:
    recorded = sample_repo.parent / "recorded.json"
    paths, run, spec = start(sample_repo)
    drive(paths, run, spec, record=str(recorded))
    cassette = json.loads(recorded.read_text())
    assert len(cassette["entries"]) == 4
    assert all(e["prompt_hash"].startswith("sha256:") for e in cassette["entries"])

    paths, run2, spec2 = start(sample_repo, **{"model.name": f"replay/{recorded}", "model.replay_lenient": "false"})
    assert drive(paths, run2, spec2).state == "COMPLETED"
    first = json.loads((paths.run_dir(run.id) / "work_breakdown.json").read_text())
    second = json.loads((paths.run_dir(run2.id) / "work_breakdown.json").read_text())
    assert first == second


def test_an_agent_that_crashes_fails_its_step_with_the_cause_recorded(sample_repo: Path) -> None:
    paths, run, spec = start(sample_repo)
    healthy = agents_invoker()

    def invoke(role, call):
        if role == "architect":
            raise RuntimeError("worker died: out of memory")
        return healthy(role, call)

    with pytest.raises(RunFailure, match="architect agent crashed"):
        drive(paths, run, spec, invoke)
    store = store_of(paths)
    failed = store.get_run(run.id)
    assert failed.state == "FAILED" and "out of memory" in failed.error
    architect = next(s for s in store.steps(run.id) if s.step == "architect")
    assert architect.status == "failed" and "out of memory" in architect.error
    assert (paths.run_dir(run.id) / "work_breakdown.json").exists(), "earlier outputs are kept"


def test_every_agent_and_model_call_span_names_its_agent_and_version(sample_repo: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``aigentflow trace --json``: gen_ai.agent.name on each agent span and on each of its model calls
    (the role unless the call names its agent), gen_ai.agent.version where the call carries one."""
    paths, run, spec = start(sample_repo)
    healthy = agents_invoker()

    def invoke(role, call):  # as the role registry fills them for a role with a registered version
        if role == "architect":
            call = replace(call, agent_name="architect", agent_version="2.1.0")
        return healthy(role, call)

    assert drive(paths, run, spec, invoke).state == "COMPLETED"
    monkeypatch.chdir(sample_repo)
    shown = CliRunner().invoke(app, ["trace", run.id, "--json"])
    assert shown.exit_code == 0, shown.output
    spans = json.loads(shown.stdout)["spans"]
    by_id = {s["span_id"]: s for s in spans}
    agents = [s for s in spans if s["kind"] == "agent"]
    assert sorted(s["attributes"]["gen_ai.agent.name"] for s in agents) == ["analyst", "architect",
                                                                           "project_manager"]
    chats = [s for s in spans if s["kind"] == "model"]
    assert len(chats) == 4
    for one in agents + chats:
        agent = one if one["kind"] == "agent" else by_id[one["parent_id"]]
        role = agent["name"].removeprefix("invoke_agent ")
        assert one["attributes"]["gen_ai.agent.name"] == role
        assert one["attributes"].get("gen_ai.agent.version") == ("2.1.0" if role == "architect" else None)


def test_the_shipped_demo_cassette_matches_todays_prompts(sample_repo: Path) -> None:
    """Strict replay fails on any prompt drift: after changing a prompt layer or an output schema,
    refresh the hashes with `python -m aigentflow.demo.rerecord`."""
    paths, run, spec = start(sample_repo, **{"model.replay_lenient": "false"})
    final = drive(paths, run, spec)
    assert final.state == "COMPLETED", final.error


def test_a_run_recorded_by_an_older_version_resumes_with_defaults_for_what_it_lacked(sample_repo: Path) -> None:
    """An older aigentflow recorded fewer settings (no trace, tools, skills, build, compliance sections; no
    newer model or run keys) and some this version no longer knows. Resuming it reads them leniently; what
    it did record is what the engine uses, the rest are today's defaults, and the stored JSON is unchanged."""
    import sqlite3

    paths, run, spec = start(sample_repo)
    with pytest.raises(Interrupted):
        drive(paths, run, spec, agents_invoker(interrupt_at="analyze"))
    log = sample_repo.parent / "hook-events.jsonl"
    older = {
        "model": {"name": "replay/demo", "temperature": 0.0, "max_validation_retries": 2, "timeout_s": 120.0,
                  "max_calls_per_run": 50, "max_reply_bytes": 1_000_000, "replay_lenient": True,
                  "record": "", "stream": False},
        "run": {"max_request_chars": 100_000, "ray_address": "", "include_dashboard": False,
                "step_timeout_s": 333.0, "tenant": "default"},
        "flags": {"preset": "mvp", "overrides": {}},
        "git": {"integration_branch": "", "merge_style": "ff", "tag_prefix": "v"},
        "hooks": [{"event": "run.finished", "command": f"cat >> {log}; echo >> {log}", "timeout_s": 10.0,
                   "retries": 2}],
        "telemetry": {"endpoint": "http://old.example"},
    }
    database = sqlite3.connect(paths.database)
    with database:
        database.execute("UPDATE runs SET settings_json = ? WHERE id = ?", (json.dumps(older), run.id))
    database.close()

    resumed = store_of(paths).get_run(run.id)
    config = resumed.config
    assert (config.model.max_calls_per_run, config.run.step_timeout_s, config.git.merge_style) == (50, 333.0, "ff")
    assert config.model.max_transient_retries == 3 and config.run.agent_start_timeout_s == 120.0
    assert config.trace.flush_every_spans == 1024 and config.tools.max_rounds == 4 and config.skills.limit == 3
    assert config.build.timeout_s == 600.0 and config.compliance.denied_licenses == ["AGPL-3.0", "GPL-3.0", "SSPL-1.0"]
    assert [h.command for h in config.hooks] == [older["hooks"][0]["command"]]

    seen: list = []
    healthy = agents_invoker()

    def invoke(role, call):
        seen.append((call.step, call.budget, call.timeout_s, call.inputs.get("settings")))
        return healthy(role, call)

    assert drive(paths, resumed, spec, invoke, resume=True).state == "COMPLETED"
    assert [(step, budget, timeout) for step, budget, timeout, _ in seen][:2] == [
        ("analyze", 50, 333.0), ("plan", 49, 333.0)], "budget and step timeout as recorded"
    settings = seen[0][3]  # what the analyze step was given: plain data, as agents get it
    assert json.loads(json.dumps(settings)) == settings
    assert settings["git"] == {"integration_branch": "", "merge_style": "ff", "tag_prefix": "v"}
    facts = store_of(paths).get_project()["facts"]
    assert settings["build"]["timeout_s"] == 600.0 and settings["build"]["memory_mb"] == 2048
    assert facts["test_command"] and settings["build"]["test_command"] == facts["test_command"], "as detected"
    assert settings["compliance"]["block_unknown_licenses"] is False
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert [e["name"] for e in events] == ["run.finished"], "the recorded hook ran, its unknown key ignored"
    raw = sqlite3.connect(paths.database).execute("SELECT settings_json FROM runs WHERE id = ?", (run.id,))
    assert json.loads(raw.fetchone()[0]) == older, "the stored settings are left as recorded"

