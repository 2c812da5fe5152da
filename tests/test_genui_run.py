"""One real demo run (Ray, the replay model, sandboxed tests) with `--json`: every stdout line is one event
valid against the published event schema, in the order things happened, with a progress event per build
task phase; then the project's `status --json`, each step's output and `runs --json` validate against
their schemas, and `status` on a terminal draws the run (the demo turns platform.genUIOutput on)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from aigentflow.genui import registry
from aigentflow.genui.events import parse_event
from tests.conftest import aigentflow
from tests.genui_runs import on_terminal


def test_demo_json_lines_are_valid_events_and_the_run_validates(tmp_path: Path, user_config: Path,
                                                                  ray_address: str) -> None:
    target = tmp_path / "demo"
    result = aigentflow("demo", "--dir", str(target), "--address", ray_address, "--json", cwd=tmp_path, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Sample project:" in result.stderr and "Sample project:" not in result.stdout, "messages go to stderr"
    events_schema = jsonschema.Draft202012Validator(registry.json_schema("events"))
    lines = result.stdout.splitlines()
    events = [json.loads(line) for line in lines]
    for line, event in zip(lines, events, strict=True):
        events_schema.validate(event)
        assert parse_event(line).type == event["type"] and event["v"] == 1
    types = [e["type"] for e in events]
    assert types[0] == "run.started" and types[-1] == "run.result" and types.count("run.result") == 1
    run_id = events[0]["run_id"]
    assert all(e["run_id"] == run_id for e in events)
    final = events[-1]
    assert final["state"] == "COMPLETED" and final["exit_code"] == 0
    assert final["outputs"] == str(target / ".aigentflow" / "runs" / run_id)
    assert [e["to_state"] for e in events if e["type"] == "run.state_changed"] == [
        "CREATED", "ANALYZING", "PLANNING", "ARCHITECTING", "BUILDING", "TESTING", "REVIEWING", "MERGING", "COMPLETED"]
    assert [e["at"] for e in events[:-1]] == sorted(e["at"] for e in events[:-1]), "in the order things happened"
    started = [e["step"] for e in events if e["type"] == "step.started"]
    finished = [e["step"] for e in events if e["type"] == "step.finished" and e["status"] == "completed"]
    assert started == finished == ["analyze", "plan", "architect", "build", "test", "review", "merge"]

    report = json.loads(aigentflow("status", run_id, "--json", cwd=target).stdout)
    jsonschema.validate(report, registry.json_schema("status"))
    registry.adapter("status").validate_json(json.dumps(report), strict=True)
    for step in report["steps"]:
        name = registry.STEP_SCHEMAS[step["step"].split(".")[0]]
        jsonschema.validate(step["output"], registry.json_schema(name))
        registry.adapter(name).validate_json(json.dumps(step["output"]), strict=True)
    jsonschema.validate(json.loads(aigentflow("runs", "--json", cwd=target).stdout), registry.json_schema("runs"))

    # BUILDING: each of the plan's tasks waits, goes through its phases, and ends merged with all of them done
    plan = next(s for s in report["steps"] if s["step"] == "plan")["output"]["tasks"]
    progress = [e for e in events if e["type"] == "task.progress"]
    build_started = next(i for i, e in enumerate(events) if e["type"] == "step.started" and e["step"] == "build")
    assert all(events.index(e) > build_started for e in progress)
    for task in plan:
        mine = [e for e in progress if e["task"] == task["id"]]
        assert mine[0]["status"] == "pending" and mine[0]["title"] == task["title"]
        assert mine[-1]["status"] == "merged" and mine[-1]["done"] == mine[-1]["total"] >= 2
        assert "implement" in [e["phase"] for e in mine] and "review" in [e["phase"] for e in mine]
        assert [e["done"] for e in mine] == sorted(e["done"] for e in mine), "never goes backwards"
    assert {e["phase"] for e in progress if e["task"] == "T1"} >= {"tests", "implement", "review", "merge"}

    code, screen, _ = on_terminal("status", run_id, cwd=target)
    assert code == 0 and f"Run {run_id}  COMPLETED" in screen and "Plan: 3 tasks" in screen
    assert "Review: T1 approve, T2 approve, T3 approve, feature approve" in screen
