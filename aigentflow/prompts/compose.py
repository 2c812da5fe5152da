"""Compose an agent's prompt from its layers, deterministically, and hash it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import BaseModel

from aigentflow.models.spec import prompt_hash

LAYER_ROOT = "layers"
CONSTITUTION = "constitution.md"
OUTPUT_FORMAT = "output_format.md"


def role_layer(role: str) -> str:
    return f"roles/{role}.md"


def load_layers(project_prompts_dir: Path | None = None) -> dict[str, str]:
    """Every shipped layer by relative path, with the project's overrides applied."""
    shipped_root = Path(str(resources.files("aigentflow.prompts") / LAYER_ROOT))
    layers = {p.relative_to(shipped_root).as_posix(): p.read_text() for p in sorted(shipped_root.rglob("*.md"))}
    if project_prompts_dir is not None and project_prompts_dir.is_dir():
        for path in sorted(project_prompts_dir.rglob("*.md")):
            layers[path.relative_to(project_prompts_dir).as_posix()] = path.read_text()
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
) -> ComposedPrompt:
    """System message: constitution, role, output format. User message: project context, task."""
    schema = json.dumps(output_schema.model_json_schema(), indent=2, sort_keys=True)
    parts = {
        CONSTITUTION: layers[CONSTITUTION].strip(),
        role_layer(role): layers[role_layer(role)].strip(),
        OUTPUT_FORMAT: layers[OUTPUT_FORMAT].strip().replace("{schema}", schema),
        "project_context": "# Project context\n\n" + project_context.strip(),
        "task": "# Task\n\n" + task.strip(),
    }
    system = "\n\n".join([parts[CONSTITUTION], parts[role_layer(role)], parts[OUTPUT_FORMAT]])
    user = "\n\n".join([parts["project_context"], parts["task"]])
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    return ComposedPrompt(
        messages=messages,
        hash=prompt_hash(messages),
        layer_hashes={name: _short_hash(text) for name, text in parts.items()},
    )
