"""Roles as data: the registry of AgentSpec versions, `aigentflow agents list|show|validate`, picking a
version by settings, and a run whose steps and model calls say which version made them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigentflow.exceptions import ConfigError
from aigentflow.project.paths import ProjectPaths
from aigentflow.roles.registry import builtin_registry, project_registry
from aigentflow.roles.spec import AgentSpec
from aigentflow.store.sqlite import SQLiteRunStore
from tests.conftest import DEMO_REQUEST, aigentflow

TERSE = 'description = "A terser analyst"\nprompt_layers = ["roles/analyst.md", "agents/analyst/terse.md"]\n'


def spec_file(repo: Path, role: str, name: str, text: str) -> Path:
    path = ProjectPaths(repo).agents_dir / role / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def terse_analyst(repo: Path) -> Path:
    spec_file(repo, "analyst", "terse.md", "Answer in as few words as the schema allows.\n")
    return spec_file(repo, "analyst", "1.1.0.toml", TERSE)


def test_every_step_of_the_pipeline_has_one_built_in_lead() -> None:
    from aigentflow.run.statemachine import PIPELINE, STATES

    roles = builtin_registry().resolve()
    for state in PIPELINE:
        lead = roles.lead(STATES[state].step)
        assert lead is not None and lead.version == "1.0.0", state
    assert roles.workflow("analyze", {"agents.projectAnalyzer": False}) is None
    assert roles.workflow("analyze", {"agents.projectAnalyzer": True}) == "actors.workflow:AnalyzeWorkflow"
    assert roles.spec("git_agent").deterministic


def test_a_project_file_adds_a_version_and_settings_pick_it(sample_repo: Path) -> None:
    terse_analyst(sample_repo)
    registry = project_registry(ProjectPaths(sample_repo))
    assert registry.problems == []
    versions = registry.versions("analyst")
    assert [(e.spec.version, e.source) for e in versions] == [
        ("1.0.0", "built-in"), ("1.1.0", ".aigentflow/agents/analyst/1.1.0.toml")]
    new = versions[1].spec
    assert new.implementation == "actors.analyst:Analyst", "what the file leaves out comes from the built-in"
    assert new.role_layers == ("roles/analyst.md", "agents/analyst/terse.md")
    assert registry.resolve().spec("analyst").version == "1.0.0", "a new version is not active until picked"
    assert registry.resolve({"analyst": {"version": "1.1.0"}}).spec("analyst").version == "1.1.0"
    with pytest.raises(ConfigError, match=r"agents.analyst.version = '2.0.0'.*1.0.0 \(built-in\), 1.1.0"):
        registry.resolve({"analyst": {"version": "2.0.0"}})
    with pytest.raises(ConfigError, match="there is no role 'wizard'"):
        registry.resolve({"wizard": {"version": "1.0.0"}})


def test_the_evolution_loop_can_register_a_version_in_code() -> None:
    registry = builtin_registry()
    base = registry.default("reviewer").spec
    registry.register(base.model_copy(update={"version": "1.0.1.dev1"}), source="code: evolution")
    assert [e.spec.version for e in registry.versions("reviewer")] == ["1.0.0", "1.0.1.dev1"]
    assert registry.resolve({"reviewer": "1.0.1.dev1"}).spec("reviewer").version == "1.0.1.dev1"
    with pytest.raises(ConfigError, match="registered twice"):
        registry.register(base, source="code: again")


@pytest.mark.parametrize(("role", "name", "text", "field", "message"), [
    ("wizard", "1.0.0.toml", "", "name", "unknown role 'wizard'"),
    ("analyst", "banana.toml", "", "version", "'banana' (the file's name) is not a version"),
    ("analyst", "1.2.0.toml", 'implementation = "actors.analyst:NoSuchClass"\n', "implementation",
     "module 'actors.analyst' has no class 'NoSuchClass'"),
    ("analyst", "1.2.0.toml", 'implementation = "actors.nowhere:Analyst"\n', "implementation",
     "module 'actors.nowhere' cannot be imported"),
    ("analyst", "1.2.0.toml", 'prompt_layers = ["roles/missing.md"]\n', "prompt_layers",
     "no prompt layer 'roles/missing.md'"),
    ("analyst", "1.2.0.json", '{"version": "1.3.0"}', "version", "does not match the file's name"),
    ("analyst", "1.2.0.toml", "budget = 0\n", "budget", "greater than or equal to 1"),
    ("analyst", "1.2.0.toml", "colour = 'blue'\n", "colour", "Extra inputs are not permitted"),
    ("analyst", "1.0.0.toml", "", "version", "analyst@1.0.0 already exists (built-in)"),
    ("analyst", "1.2.0.toml", "not toml [", "(file)", "cannot be read"),
])
def test_a_bad_spec_file_is_refused_naming_the_file_and_field(
        sample_repo: Path, role: str, name: str, text: str, field: str, message: str) -> None:
    path = spec_file(sample_repo, role, name, text)
    registry = project_registry(ProjectPaths(sample_repo))
    assert [(p.where, p.field) for p in registry.problems] == [(str(path), field)]
    assert message in registry.problems[0].message
    assert all(not e.source.endswith(name) for r in registry.roles() for e in registry.versions(r)), "left out"

    checked = aigentflow("agents", "validate", cwd=sample_repo)
    assert checked.returncode == 2
    assert f"{path}: {field}: " in checked.stdout and message in checked.stdout

    refused = aigentflow("run", DEMO_REQUEST, "--model", "replay/demo", cwd=sample_repo)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert str(path) in refused.stderr and field in refused.stderr
    assert SQLiteRunStore(ProjectPaths(sample_repo).database).list_runs() == [], "nothing recorded"


def test_agents_list_show_and_validate(sample_repo: Path) -> None:
    terse_analyst(sample_repo)
    listing = aigentflow("agents", "list", "--json", cwd=sample_repo)
    assert listing.returncode == 0, listing.stderr
    rows = {(r["role"], r["version"]): r for r in json.loads(listing.stdout)["agents"]}
    assert len({role for role, _ in rows}) == 12
    assert rows[("analyst", "1.0.0")]["active"] and not rows[("analyst", "1.1.0")]["active"]
    assert rows[("analyst", "1.1.0")]["source"] == ".aigentflow/agents/analyst/1.1.0.toml"
    assert rows[("analyst", "1.0.0")]["origin"] == "builtin" and rows[("analyst", "1.1.0")]["origin"] == "project"
    assert rows[("tester", "1.0.0")]["steps"] == ["test"] and rows[("tester", "1.0.0")]["helps"] == ["build"]

    picked = aigentflow("config", "set", "agents.analyst.version", "1.1.0", cwd=sample_repo)
    assert picked.returncode == 0, picked.stderr
    text = aigentflow("agents", "list", cwd=sample_repo)
    line = next(line for line in text.stdout.splitlines() if "1.1.0" in line)
    assert line.split()[:3] == ["analyst", "1.1.0", "*"] and line.endswith(".aigentflow/agents/analyst/1.1.0.toml")
    assert "project" in line.split()

    shown = aigentflow("agents", "show", "analyst", "--json", cwd=sample_repo)
    document = json.loads(shown.stdout)
    assert document["version"] == "1.1.0" and document["active"] and document["versions"] == ["1.0.0", "1.1.0"]
    assert document["prompt_layers"] == ["roles/analyst.md", "agents/analyst/terse.md"]
    older = aigentflow("agents", "show", "analyst", "--version", "1.0.0", cwd=sample_repo)
    assert older.returncode == 0 and "analyst@1.0.0" in older.stdout and "(active)" not in older.stdout
    missing = aigentflow("agents", "show", "analyst", "--version", "3.0", cwd=sample_repo)
    assert missing.returncode == 2 and "analyst has no version '3.0'" in missing.stderr

    ok = aigentflow("agents", "validate", cwd=sample_repo)
    assert ok.returncode == 0 and "analyst@1.1.0" in ok.stdout

    spec_file(sample_repo, "analyst", "1.1.0.toml", TERSE.replace("terse.md", "gone.md"))
    broken = aigentflow("agents", "validate", cwd=sample_repo)
    assert broken.returncode == 2 and "prompt_layers" in broken.stdout
    assert "agents.analyst.version" in broken.stdout, "the setting now names a version that is left out"


def test_a_version_setting_is_checked_before_anything_is_recorded(sample_repo: Path) -> None:
    bad = aigentflow("config", "set", "agents.analyst.version", "not a version", cwd=sample_repo)
    assert bad.returncode == 2 and "is not a version" in bad.stderr
    unknown = aigentflow("run", DEMO_REQUEST, "--model", "replay/demo", "--set", "agents.analyst.version=7.0",
                         cwd=sample_repo)
    assert unknown.returncode == 2 and "analyst has no version '7.0'" in unknown.stderr
    assert SQLiteRunStore(ProjectPaths(sample_repo).database).list_runs() == []


def test_a_spec_with_an_unknown_field_value_is_a_validation_error() -> None:
    with pytest.raises(ValueError, match="not a tool pattern"):
        AgentSpec(name="analyst", version="1.0.0", implementation="actors.analyst:Analyst", tools=("no pattern",))
    with pytest.raises(ValueError, match="not a class path"):
        AgentSpec(name="analyst", version="1.0.0", implementation="actors.analyst.Analyst")


@pytest.mark.ray
def test_a_run_with_a_new_version_records_it_on_its_steps_and_model_calls(sample_repo: Path, ray_address: str) -> None:
    terse_analyst(sample_repo)
    result = aigentflow("run", DEMO_REQUEST, "--model", "replay/demo", "--address", ray_address,
                        "--set", "agents.analyst.version=1.1.0", "--set", "model.replay_lenient=true",
                        cwd=sample_repo)
    assert result.returncode == 0, result.stdout + result.stderr
    # Its prompt has the new layer, so the demo's recording (made for 1.0.0's prompt) is another prompt's.
    said = result.stdout + result.stderr
    assert "LENIENT REPLAY" in said and "analyst: lenient replay, prompt drift" in said
    run = SQLiteRunStore(ProjectPaths(sample_repo).database).list_runs()[0]
    assert run.settings["agents"]["analyst"] == {"version": "1.1.0"}
    assert run.settings["agents"]["architect"] == {"version": "1.0.0"}

    report = json.loads(aigentflow("status", run.id, "--json", cwd=sample_repo).stdout)
    assert report["agents"]["analyst"] == "1.1.0" and report["agents"]["reviewer"] == "1.0.0"

    trace = aigentflow("trace", run.id, "--json", cwd=sample_repo)
    spans = json.loads(trace.stdout)["spans"]
    agents = {s["attributes"]["gen_ai.agent.name"]: s["attributes"].get("gen_ai.agent.version")
              for s in spans if s["name"].startswith("invoke_agent ") and s["kind"] == "agent"}
    assert agents == {"analyst": "1.1.0", "project_manager": "1.0.0", "architect": "1.0.0"}
    states = {s["name"]: s["attributes"].get("gen_ai.agent.version") for s in spans if s["kind"] == "state"}
    assert states["state ANALYZING"] == "1.1.0" and states["state PLANNING"] == "1.0.0"
    chats = [s["attributes"] for s in spans if s["name"].startswith("chat ")]
    assert chats and all(c.get("gen_ai.agent.version") for c in chats)
    assert {c["gen_ai.agent.name"] for c in chats} == set(agents)
