"""The published schemas (`aigentflow schema`): exported and read back, valid JSON Schema, and every covered
command's real `--json` output valid against its schema, checked both by jsonschema on the exported file
and by pydantic in strict mode. `status` stays free of pydantic and rich when piped. The CLI runs as a
subprocess on a real project and store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from aigentflow.genui import events, registry, results
from aigentflow.run import progress
from aigentflow.run.statemachine import State
from tests.conftest import aigentflow
from tests.genui_runs import PLAN, record_run


def exported(tmp_path: Path) -> dict[str, dict[str, Any]]:
    out = tmp_path / "schemas"
    result = aigentflow("schema", "export", str(out), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    files = json.loads(result.stdout)["files"]
    assert sorted(files) == sorted(f"{name}.schema.json" for name in registry.SCHEMAS)
    return {path.name.removesuffix(".schema.json"): json.loads(path.read_text()) for path in out.iterdir()}


def check(name: str, document: Any, schemas: dict[str, dict[str, Any]]) -> None:
    """``document`` is valid against the exported schema ``name`` (jsonschema) and its model (strict)."""
    jsonschema.Draft202012Validator(schemas[name]).validate(document)
    registry.adapter(name).validate_json(json.dumps(document), strict=True)


def test_export_round_trips_and_every_file_is_json_schema(tmp_path: Path) -> None:
    schemas = exported(tmp_path)
    for name, schema in schemas.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$id"] == f"https://aigentflow.dev/schemas/{name}.schema.json" and schema["title"] == name
        shown = aigentflow("schema", "show", name, cwd=tmp_path)
        assert shown.returncode == 0 and json.loads(shown.stdout) == schema, name
    # an agent's schema is what its model asks for: a plan that breaks it is refused by both
    check("plan", PLAN, schemas)
    broken = {"tasks": [{**PLAN["tasks"][0], "type": "poetry"}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schemas["plan"])
    listed = aigentflow("schema", "list", "--json", cwd=tmp_path)
    rows = json.loads(listed.stdout)
    check("schemas", rows, schemas)
    assert {r["name"]: r["title"] for r in rows}["plan"] == "WorkBreakdown"
    text = aigentflow("schema", "list", cwd=tmp_path).stdout
    assert "feature-review" in text and "RunEvent" in text and "list[RunRow]" in text


def test_an_unknown_schema_is_named_with_the_known_ones(tmp_path: Path) -> None:
    result = aigentflow("schema", "show", "nope", cwd=tmp_path)
    assert result.returncode == 2 and "no schema 'nope'" in result.stderr and "feature-review" in result.stderr
    blocked = tmp_path / "file"
    blocked.write_text("x")
    result = aigentflow("schema", "export", str(blocked), cwd=tmp_path)
    assert result.returncode == 2 and str(blocked) in result.stderr


def test_every_covered_commands_json_validates_against_its_schema(sample_repo: Path, tmp_path: Path) -> None:
    schemas = exported(tmp_path)
    run_id = record_run(sample_repo)
    record_run(sample_repo, flags={}, upto="plan")  # a second run, left in BUILDING
    outputs = {
        "status": ["status", run_id, "--json"],
        "runs": ["runs", "--json"],
        "audit": ["audit", "--json"],
    }
    for name, args in outputs.items():
        result = aigentflow(*args, cwd=sample_repo)
        assert result.returncode == 0, result.stderr
        check(name, json.loads(result.stdout), schemas)
    report = json.loads(aigentflow("status", run_id, "--json", cwd=sample_repo).stdout)
    for step in report["steps"]:
        check(registry.STEP_SCHEMAS[step["step"].split(".")[0]], step["output"], schemas)
    # a key the command adds without its schema is caught
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**report, "surprise": 1}, schemas["status"])


def test_the_schemas_name_every_state_and_event_type() -> None:
    assert set(results.RunState.__args__) == {s.value for s in State}
    assert [m.model_fields["type"].annotation.__args__[0] for m in events.EVENT_MODELS] == list(progress.EVENT_TYPES)
    line = json.dumps(progress.event(progress.WARNING, "r1", message="hook failed"))
    assert events.parse_event(line).message == "hook failed"


def imported_by(args: list[str], cwd: Path) -> set[str]:
    probe = subprocess.run([sys.executable, "-X", "importtime", "-m", "aigentflow", *args], cwd=cwd,
                           capture_output=True, text=True, timeout=60, check=False)
    assert probe.returncode == 0, probe.stderr[-2000:]
    return {line.rsplit("|", 1)[-1].strip() for line in probe.stderr.splitlines() if "|" in line}


def test_piped_status_imports_neither_pydantic_nor_rich(sample_repo: Path) -> None:
    run_id = record_run(sample_repo)
    for args in (["status", run_id], ["status", run_id, "--json"], ["runs"]):
        modules = imported_by(args, sample_repo)
        assert "pydantic" not in modules and "rich" not in modules, args


def test_bad_input_with_json_prints_no_event_and_says_what_was_wrong(sample_repo: Path) -> None:
    for args, says in ((["run", "   ", "--json"], "the feature request is empty"),
                       (["resume", "nope", "--json"], "nope"),
                       (["demo", "--dir", str(sample_repo), "--json"], "is not empty")):
        result = aigentflow(*args, cwd=sample_repo)
        assert result.returncode == 2 and result.stdout == "" and says in result.stderr, args
    assert json.loads(aigentflow("runs", "--json", cwd=sample_repo).stdout) == [], "nothing was recorded"
