"""Skills and MCP tools inside a run, as a user sets them up: a project skill in `.aigentflow/skills/`,
an MCP server in `.aigentflow/mcp.json`, `aigentflow run` on the session's Ray, replayed models."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import pytest

from aigentflow.tracing.reader import read_spans
from tests.conftest import aigentflow
from tests.test_cli_run import status_of

pytestmark = pytest.mark.ray

REQUEST = "Add due dates to tasks and a command that lists overdue tasks"
EDGE_SERVER = Path(__file__).parent / "mcp_edge_server.py"


def demo_entries() -> list[dict]:
    return json.loads((resources.files("aigentflow") / "cassettes" / "demo.json").read_text())["entries"]


def write_cassette(repo: Path, name: str, entries: list[dict]) -> str:
    target = repo / ".aigentflow" / "cassettes" / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    # A script (lenient): the skills and tool results in these prompts were never recorded.
    target.write_text(json.dumps({"version": 1, "model": "replay/test", "match": "lenient", "entries": entries}))
    return f"replay/{name}"


def run_id_of(repo: Path) -> str:
    return json.loads(aigentflow("runs", "--json", cwd=repo).stdout)[0]["id"]


def test_a_project_skill_is_picked_put_in_the_prompt_and_recorded_on_the_step(sample_repo: Path,
                                                                              ray_address: str) -> None:
    skills = sample_repo / ".aigentflow" / "skills"
    (skills / "due-dates").mkdir(parents=True)
    (skills / "due-dates" / "SKILL.md").write_text(
        "---\nname: due-dates\ndescription: Conventions for due dates and overdue tasks in this tasks store.\n---\n"
        "Store due dates as ISO 8601 strings; a task is overdue when its due date is before today.\n")
    (skills / "Broken_Skill").mkdir()
    (skills / "Broken_Skill" / "SKILL.md").write_text("no front matter here\n")
    entries = [{k: v for k, v in e.items() if k != "prompt_hash"} for e in demo_entries()]  # prompts now differ
    model = write_cassette(sample_repo, "skills", entries)
    result = aigentflow("run", REQUEST, "--model", model, "--address", ray_address, cwd=sample_repo)
    assert result.returncode == 0, result.stderr + result.stdout  # the malformed skill broke nothing
    report = status_of(sample_repo, run_id_of(sample_repo))
    assert report["run"]["state"] == "COMPLETED"
    picked = {s["step"]: [(p["name"], p["source"]) for p in s["output"].get("skills", [])] for s in report["steps"]}
    assert all(("due-dates", "project") in picked[step] for step in ("analyze", "plan", "architect")), picked
    assert "skills: due-dates" in aigentflow("status", cwd=sample_repo).stdout
    analyze = next(s for s in report["steps"] if s["step"] == "analyze")
    due_dates = next(p for p in analyze["output"]["skills"] if p["name"] == "due-dates")
    assert {"due", "overdu", "task"} <= set(due_dates["matched"])
    # the agent spans name the skills their prompts carried
    spans = read_spans(sample_repo / ".aigentflow" / "traces", report["run"]["id"])
    carried = {s["attributes"].get("aigentflow.step"): s["attributes"].get("aigentflow.skills", "")
               for s in spans if s["kind"] == "agent"}
    assert all("due-dates" in carried[step].split(",") for step in ("analyze", "plan", "architect")), carried
    # the skill's record is not handed to later agents as if it were the analyst's result
    listing = aigentflow("skills", "list", "--json", cwd=sample_repo)
    assert "Broken_Skill" in listing.stdout


def edge_config(repo: Path, timeout_s: float = 3) -> None:
    (repo / ".aigentflow" / "mcp.json").write_text(json.dumps({"mcpServers": {
        "edge": {"command": sys.executable, "args": [str(EDGE_SERVER)], "timeout_s": timeout_s,
                 "env": {"EDGE_TOKEN": "${EDGE_TOKEN:-not-set}"}},
        "broken": {"command": "/nonexistent/mcp-server", "startup_timeout_s": 5}}}))


def test_an_agent_calls_mcp_tools_through_the_router_refused_and_failing_calls_recorded(
    sample_repo: Path, ray_address: str
) -> None:
    edge_config(sample_repo)
    entries = [{k: v for k, v in e.items() if k != "prompt_hash"} for e in demo_entries()]
    analyst = next(e for e in entries if e["role"] == "analyst")
    ask = {"tool_calls": [{"tool": "edge/echo", "arguments": {"text": "due dates"}},
                          {"tool": "edge/add", "arguments": {"a": 1, "b": 2}},
                          {"tool": "edge/hang", "arguments": {}}, {"tool": "edge/cwd", "arguments": {}}]}
    entries.insert(entries.index(analyst), {**analyst, "response": ask})
    analyst["attempt"] = 2
    model = write_cassette(sample_repo, "tools", entries)
    started = time.time()
    result = aigentflow("run", REQUEST, "--model", model, "--address", ray_address,
                        "--set", "tools.analyst=edge/echo,edge/hang,edge/cwd,broken/*", cwd=sample_repo, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "MCP server 'broken' offers no tools to the analyst" in result.stdout  # a warning, not a failure
    run_id = run_id_of(sample_repo)
    report = status_of(sample_repo, run_id)
    assert report["run"]["state"] == "COMPLETED"
    analyze = next(s for s in report["steps"] if s["step"] == "analyze")
    calls = {c["tool"]: c for c in analyze["output"]["tool_calls"]}
    assert calls["edge/echo"]["ok"] and calls["edge/echo"]["size"] > 0
    assert calls["edge/add"]["refused"] and "tools.analyst" in calls["edge/add"]["error"]
    assert not calls["edge/hang"]["ok"] and "timed out" in calls["edge/hang"]["error"]
    assert calls["edge/cwd"]["ok"]  # it ran in the project's directory: its result is that path
    cwd_span = [s for s in read_spans(sample_repo / ".aigentflow" / "traces", run_id)
                if s["name"] == "execute_tool edge/cwd"]
    assert cwd_span and cwd_span[0]["attributes"]["aigentflow.tool.result_bytes"] == \
        len(str(sample_repo.resolve()).encode())
    assert time.time() - started < 120
    shown = aigentflow("status", run_id, cwd=sample_repo).stdout
    assert "tools: 4 call(s), 1 refused, 1 failed (edge/add, edge/cwd, edge/echo, edge/hang)" in " ".join(shown.split())
    spans = {s["name"]: s for s in read_spans(sample_repo / ".aigentflow" / "traces", run_id) if s["kind"] == "tool"}
    assert spans["execute_tool edge/echo"]["status"] == "ok"
    assert spans["execute_tool edge/add"]["status"] == "error"
    assert spans["execute_tool edge/add"]["attributes"]["aigentflow.tool.refused"] is True
    arguments = spans["execute_tool edge/echo"]["attributes"]["aigentflow.tool.arguments"]
    assert json.loads(arguments) == {"text": "due dates"}
    # the run closed its servers: no edge server is left running
    left = subprocess.run(["pgrep", "-f", str(EDGE_SERVER)], capture_output=True, text=True, check=False)
    assert left.stdout.strip() == "", left.stdout


def test_a_broken_mcp_config_stops_the_run_before_it_is_recorded(sample_repo: Path, ray_address: str) -> None:
    (sample_repo / ".aigentflow" / "mcp.json").write_text('{"mcpServers": {"edge": {"command": ')
    result = aigentflow("run", REQUEST, "--address", ray_address, cwd=sample_repo)
    assert result.returncode != 0
    assert "mcp.json" in result.stderr + result.stdout
    assert json.loads(aigentflow("runs", "--json", cwd=sample_repo).stdout) == []


def test_a_picked_skill_brings_the_mcp_tools_its_allowed_tools_name(sample_repo: Path, ray_address: str) -> None:
    edge_config(sample_repo)
    skill = sample_repo / ".aigentflow" / "skills" / "due-dates"
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text(
        "---\nname: due-dates\ndescription: Conventions for due dates and overdue tasks.\n"
        "allowed-tools: edge/echo Read\n---\nCheck the wording with edge/echo.\n")
    entries = [{k: v for k, v in e.items() if k != "prompt_hash"} for e in demo_entries()]
    analyst = next(e for e in entries if e["role"] == "analyst")
    entries.insert(entries.index(analyst), {**analyst, "response": {"tool_calls": [
        {"tool": "edge/echo", "arguments": {"text": "overdue"}}, {"tool": "edge/big", "arguments": {"n": 3}}]}})
    analyst["attempt"] = 2
    model = write_cassette(sample_repo, "granted", entries)
    result = aigentflow("run", REQUEST, "--model", model, "--address", ray_address,
                        "--set", "tools.analyst=edge/cwd", cwd=sample_repo, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    analyze = next(s for s in status_of(sample_repo, run_id_of(sample_repo))["steps"] if s["step"] == "analyze")
    calls = {c["tool"]: c for c in analyze["output"]["tool_calls"]}
    assert calls["edge/echo"]["ok"] and not calls["edge/echo"]["refused"]  # granted by the skill
    assert calls["edge/big"]["refused"] and "its skills grant ['edge/echo']" in calls["edge/big"]["error"]
