"""Compose an agent's prompt from its layers, deterministically, and hash it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from aigentflow.models.spec import prompt_hash

LAYER_ROOT = "layers"
CONSTITUTION = "constitution.md"
OUTPUT_FORMAT = "output_format.md"
TOOLS = "tools.md"


def render_tools(layers: dict[str, str], tools: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> str:
    """The tools layer: how to ask for tool calls (``tools.md``, overridable) and each tool's schema."""
    if not tools:
        return ""
    listing = "\n\n".join(
        f"### {t['id']}\n\n{(t.get('description') or '').strip()}\n\nArguments (JSON schema):\n\n```json\n"
        f"{json.dumps(t.get('input_schema') or {}, indent=2, sort_keys=True)}\n```" for t in tools)
    return layers[TOOLS].strip() + "\n\n" + listing


def role_layer(role: str) -> str:
    return f"roles/{role}.md"


def load_layers(project_prompts_dir: Path | None = None, agents_dir: Path | None = None) -> dict[str, str]:
    """Every shipped layer by relative path, with the project's overrides applied, and the prompt layers
    kept beside the project's own role versions (``.aigentflow/agents/<role>/*.md`` as ``agents/<role>/...``)."""
    shipped_root = Path(str(resources.files("aigentflow.prompts") / LAYER_ROOT))
    layers = {p.relative_to(shipped_root).as_posix(): p.read_text() for p in sorted(shipped_root.rglob("*.md"))}
    if project_prompts_dir is not None and project_prompts_dir.is_dir():
        for path in sorted(project_prompts_dir.rglob("*.md")):
            layers[path.relative_to(project_prompts_dir).as_posix()] = path.read_text()
    if agents_dir is not None and agents_dir.is_dir():
        for path in sorted(agents_dir.glob("*/*.md")):
            layers["agents/" + path.relative_to(agents_dir).as_posix()] = path.read_text()
    return layers


@dataclass(frozen=True)
class ComposedPrompt:
    messages: list[dict[str, str]]
    hash: str
    layer_hashes: dict[str, str]


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def compose(
    layers: dict[str, str],
    *,
    role: str,
    project_context: str,
    task: str,
    output_schema: type[BaseModel],
    skills: str = "",
    tools: tuple[dict[str, Any], ...] | list[dict[str, Any]] = (),
    role_layers: tuple[str, ...] = (),
) -> ComposedPrompt:
    """System message: constitution, role, [skills], output format, [tools]. User message: project
    context, task. The skills and tools layers are left out when empty, so a prompt without them is
    the same as before they existed (recorded cassettes keep matching). ``role_layers``: the role's
    layers from its ``AgentSpec`` (default ``roles/<role>.md``)."""
    role_names = role_layers or (role_layer(role),)
    schema = json.dumps(output_schema.model_json_schema(), indent=2, sort_keys=True)
    parts = {
        CONSTITUTION: layers[CONSTITUTION].strip(),
        **{name: layers[name].strip() for name in role_names},
        "skills": skills.strip(),
        OUTPUT_FORMAT: layers[OUTPUT_FORMAT].strip().replace("{schema}", schema),
        "tools": render_tools(layers, tools),
        "project_context": "# Project context\n\n" + project_context.strip(),
        "task": "# Task\n\n" + task.strip(),
    }
    system = "\n\n".join(part for part in (parts[CONSTITUTION], *(parts[name] for name in role_names),
                                            parts["skills"], parts[OUTPUT_FORMAT], parts["tools"]) if part)
    user = "\n\n".join([parts["project_context"], parts["task"]])
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return ComposedPrompt(
        messages=messages,
        hash=prompt_hash(messages),
        layer_hashes={name: _short_hash(text) for name, text in parts.items() if text},
    )
