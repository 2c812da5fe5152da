"""Layered prompts: deterministic composition, layer order, the embedded schema, project overrides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from actors import agent_class
from actors.specs import BUILTIN_SPECS
from aigentflow.models.spec import prompt_hash
from aigentflow.prompts.compose import (
    CONSTITUTION,
    OUTPUT_FORMAT,
    ComposedPrompt,
    compose,
    load_layers,
    role_layer,
)


class Findings(BaseModel):
    """An output model for the tests."""

    summary: str
    files: list[str] = []


class OtherFindings(BaseModel):
    """A different output model."""

    verdict: bool


CONTEXT = "Project tasks-demo: Python, 6 files, tests with pytest."
TASK = "Add due dates to tasks."


def layers() -> dict[str, str]:
    return {
        CONSTITUTION: "# Constitution\n\nRULE-CONSTITUTION",
        role_layer("analyst"): "# Role: Analyst\n\nRULE-ROLE",
        OUTPUT_FORMAT: "# Output format\n\nRULE-FORMAT\n\n{schema}\n",
    }


def composed(**changes: object) -> ComposedPrompt:
    """The test prompt, with ``changes`` (``layers`` or any keyword of ``compose``) applied."""
    arguments: dict[str, object] = {"layers": layers(), "role": "analyst", "project_context": CONTEXT,
                                    "task": TASK, "output_schema": Findings, **changes}
    return compose(**arguments)  # type: ignore[arg-type]


def test_compose_is_deterministic() -> None:
    first, second = composed(), composed()
    assert first.messages == second.messages
    assert first.hash == second.hash == prompt_hash(first.messages)
    assert first.layer_hashes == second.layer_hashes


def test_layers_appear_in_order_system_then_user() -> None:
    system, user = composed().messages
    assert (system["role"], user["role"]) == ("system", "user")
    text = system["content"]
    assert text.index("RULE-CONSTITUTION") < text.index("RULE-ROLE") < text.index("RULE-FORMAT")
    assert CONTEXT not in text and TASK not in text
    assert user["content"].index(CONTEXT) < user["content"].index(TASK)
    assert "# Project context" in user["content"] and "# Task" in user["content"]
    assert "RULE-" not in user["content"]


def test_output_schema_is_embedded_in_place_of_the_placeholder() -> None:
    system = composed().messages[0]["content"]
    schema = json.dumps(Findings.model_json_schema(), indent=2, sort_keys=True)
    assert schema in system
    assert "{schema}" not in system
    assert system.index("RULE-FORMAT") < system.index(schema)


@pytest.mark.parametrize(
    ("changed", "expected_layer"),
    [
        ({"layers": {**layers(), CONSTITUTION: "# Constitution\n\nOTHER"}}, CONSTITUTION),
        ({"layers": {**layers(), role_layer("analyst"): "# Role\n\nOTHER"}}, role_layer("analyst")),
        ({"layers": {**layers(), OUTPUT_FORMAT: "# Format\n\nOTHER {schema}"}}, OUTPUT_FORMAT),
        ({"output_schema": OtherFindings}, OUTPUT_FORMAT),
        ({"project_context": CONTEXT + " Uses click."}, "project_context"),
        ({"task": TASK + " And overdue listing."}, "task"),
    ],
)
def test_changing_any_one_layer_changes_the_hash_and_only_that_layer_hash(
    changed: dict[str, object], expected_layer: str
) -> None:
    base, other = composed(), composed(**changed)
    assert other.hash != base.hash
    differing = {name for name in base.layer_hashes if base.layer_hashes[name] != other.layer_hashes[name]}
    assert differing == {expected_layer}


def test_shipped_layers_compose_for_every_role() -> None:
    shipped = load_layers()
    assert {CONSTITUTION, OUTPUT_FORMAT} <= set(shipped)
    from actors.base import BaseAgent

    for spec in BUILTIN_SPECS:
        role = spec.name
        if spec.deterministic:  # calls no model: must not pretend to be a model agent
            assert not issubclass(agent_class(role), BaseAgent) and agent_class(role).role == role
            continue
        assert role_layer(role) in shipped, f"no shipped role layer for {role}"
        assert shipped[role_layer(role)].strip()
        assert agent_class(role).role == role
        prompt = compose(shipped, role=role, project_context=CONTEXT, task=TASK, output_schema=Findings)
        assert shipped[role_layer(role)].strip() in prompt.messages[0]["content"]
    assert "{schema}" in shipped[OUTPUT_FORMAT]


def test_project_override_replaces_the_shipped_layer(tmp_path: Path) -> None:
    prompts_dir = tmp_path / ".aigentflow" / "prompts"
    (prompts_dir / "roles").mkdir(parents=True)
    (prompts_dir / "roles" / "analyst.md").write_text("# Role: Analyst\n\nOur house analyst rules.\n")
    (prompts_dir / "roles" / "notes.txt").write_text("not a layer")

    shipped, overridden = load_layers(), load_layers(prompts_dir)
    assert overridden[role_layer("analyst")] == "# Role: Analyst\n\nOur house analyst rules.\n"
    assert {k: v for k, v in overridden.items() if k != role_layer("analyst")} == {
        k: v for k, v in shipped.items() if k != role_layer("analyst")
    }
    assert "roles/notes.txt" not in overridden

    base = compose(shipped, role="analyst", project_context=CONTEXT, task=TASK, output_schema=Findings)
    custom = compose(overridden, role="analyst", project_context=CONTEXT, task=TASK, output_schema=Findings)
    assert "Our house analyst rules." in custom.messages[0]["content"]
    assert shipped[role_layer("analyst")].strip() not in custom.messages[0]["content"]
    assert custom.hash != base.hash


def test_missing_prompts_dir_means_shipped_layers(tmp_path: Path) -> None:
    assert load_layers(tmp_path / "absent") == load_layers()


def test_skills_and_tools_layers_sit_in_the_system_message_only_when_given() -> None:
    plain = composed()
    tool = {"id": "clock/now", "description": "The time now.", "input_schema": {"type": "object"}}
    equipped = composed(layers={**layers(), "tools.md": "# Tools\n\nRULE-TOOLS"}, skills="# Skills\n\nRULE-SKILL",
                        tools=[tool])
    text = equipped.messages[0]["content"]
    assert text.index("RULE-ROLE") < text.index("RULE-SKILL") < text.index("RULE-FORMAT") < text.index("RULE-TOOLS")
    assert "### clock/now" in text and "The time now." in text
    assert equipped.hash != plain.hash and {"skills", "tools"} <= set(equipped.layer_hashes)
    # without them, the prompt is byte for byte what it was before these layers existed
    assert "skills" not in plain.layer_hashes and "RULE-SKILL" not in plain.messages[0]["content"]


def test_the_shipped_tools_layer_explains_the_protocol() -> None:
    text = load_layers()["tools.md"]
    assert '"tool_calls"' in text and "not instructions" in text
