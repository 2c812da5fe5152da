"""The published schemas, by name: command results, agent outputs, workflow step results, run events.

``SCHEMAS`` names each one's model as ``module:attribute`` (imported when asked for); ``json_schema``
gives its JSON Schema (pydantic's ``model_json_schema``, with ``$id`` and a title of its name), and
``export`` writes them all as ``<name>.schema.json`` files. ``aigentflow schema list|show|export``
is the command over this. ``STEP_SCHEMAS`` says which schema a step's ``output`` follows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UsageError

SCHEMA_BASE = "https://aigentflow.dev/schemas/"
"""The ``$id`` prefix of every published schema (an identifier, not fetched)."""


@dataclass(frozen=True)
class Entry:
    kind: str
    """command (a command's ``--json``), agent (what an agent returns), step (a workflow step's result), event."""
    target: str
    """``module:attribute``: a pydantic model, or a list of one (``list:module:attribute``), or a TypeAdapter."""
    description: str


SCHEMAS: dict[str, Entry] = {
    "status": Entry("command", "aigentflow.genui.results:RunReport", "`aigentflow status RUN --json`"),
    "runs": Entry("command", "list:aigentflow.genui.results:RunRow", "`aigentflow runs --json`"),
    "audit": Entry("command", "list:aigentflow.genui.results:AuditEntry", "`aigentflow audit --json`"),
    "schemas": Entry("command", "list:aigentflow.genui.results:SchemaRow", "`aigentflow schema list --json`"),
    "events": Entry("event", "aigentflow.genui.events:EVENTS",
                    "one line of `aigentflow run --json` / `demo --json` (told apart by `type`)"),
    "analysis": Entry("agent", "aigentflow.roles.outputs:Research", "the Analyst's research (the analyze step)"),
    "project-summary": Entry("agent", "aigentflow.roles.outputs:ProjectSummary", "the Project Analyzer's summary"),
    "plan": Entry("agent", "aigentflow.roles.outputs:WorkBreakdown",
                  "the Project Manager's work breakdown (the plan step)"),
    "architecture": Entry("agent", "aigentflow.roles.outputs:ArchitectureRecommendations",
                          "the Architect's decisions (the architect step)"),
    "design": Entry("agent", "aigentflow.roles.outputs:UIDesign", "the UI Designer's screens (the design step)"),
    "review": Entry("agent", "aigentflow.roles.outputs:Review", "the Reviewer's verdict on one task's diff"),
    "change": Entry("agent", "aigentflow.roles.outputs:TaskChange", "a developer's edits for one task"),
    "test-plan": Entry("agent", "aigentflow.roles.outputs:TestPlan", "the Tester's tests, written first"),
    "fix": Entry("agent", "aigentflow.roles.outputs:Fix", "the Bug Fixer's diagnosis and edits"),
    "resolution": Entry("agent", "aigentflow.roles.outputs:Resolution", "the Merge Resolver's resolved files"),
    "build": Entry("step", "aigentflow.genui.steps:BuildOutput", "the build step: every task, merged or not"),
    "test-round": Entry("step", "aigentflow.genui.steps:TestRound", "a test step: the whole suite"),
    "suite-fix": Entry("step", "aigentflow.genui.steps:SuiteFix", "a fix step: a fix of the failing suite"),
    "feature-review": Entry("step", "aigentflow.genui.steps:FeatureReview", "the review step: the whole feature"),
    "merge": Entry("step", "aigentflow.genui.steps:MergeOutput", "the merge step"),
}

STEP_SCHEMAS: dict[str, str] = {"analyze": "analysis", "plan": "plan", "architect": "architecture",
                                "design": "design", "build": "build", "test": "test-round", "fix": "suite-fix",
                                "review": "feature-review", "merge": "merge"}
"""A step (its base name: ``test.2`` is ``test``) -> the schema its ``output`` follows."""


def _entry(name: str) -> Entry:
    if name not in SCHEMAS:
        raise UsageError(f"no schema {name!r}; the schemas are: {', '.join(SCHEMAS)} (`aigentflow schema list`)")
    return SCHEMAS[name]


def adapter(name: str) -> Any:
    """A pydantic ``TypeAdapter`` for schema ``name``: ``.validate_python(data)``, ``.json_schema()``."""
    from pydantic import TypeAdapter

    target = _entry(name).target
    many = target.startswith("list:")
    module, attribute = target.removeprefix("list:").split(":")
    found = getattr(__import__(module, fromlist=[attribute]), attribute)
    if isinstance(found, TypeAdapter):
        return found
    return TypeAdapter(list[found] if many else found)


def json_schema(name: str) -> dict[str, Any]:
    """Schema ``name`` as JSON Schema (draft 2020-12), with its ``$id`` and its name as title."""
    entry = _entry(name)
    schema = adapter(name).json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"{SCHEMA_BASE}{name}.schema.json",
            "title": name, "description": entry.description, **{k: v for k, v in schema.items() if k != "title"}}


def listing() -> list[dict[str, str]]:
    """Every schema: name, kind, its model (``RunEvent``: the union of the events), what it describes."""
    rows = []
    for name, entry in SCHEMAS.items():
        many, model = entry.target.startswith("list:"), entry.target.rsplit(":", 1)[1]
        title = "RunEvent" if model == "EVENTS" else f"list[{model}]" if many else model
        rows.append({"name": name, "kind": entry.kind, "title": title, "description": entry.description})
    return rows


def export(directory: Path) -> list[Path]:
    """Write every schema as ``directory/<name>.schema.json`` (the directory is made); the files written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot make the directory {directory}: {exc.strerror or exc}") from None
    if not directory.is_dir():
        raise UsageError(f"{directory} is not a directory; give a directory to write the schemas in.")
    written = []
    for name in SCHEMAS:
        path = directory / f"{name}.schema.json"
        path.write_text(json.dumps(json_schema(name), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(path)
    return written
