"""The role versions a tournament can play: the project's registry (built-ins and its own
``.aigentflow/agents/<role>/<version>.toml|json``) plus the variants shipped here as data
(``variants/<role>/<version>.toml`` with their prompt layers beside them). A project's file of the same
role and version wins over a shipped variant."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from aigentflow.exceptions import UsageError
from aigentflow.prompts.compose import load_layers
from aigentflow.roles.registry import RoleRegistry, project_registry
from aigentflow.roles.spec import AgentSpec

VARIANTS_DIR = Path(__file__).parent / "variants"
SHIPPED_VARIANT = "evolution: shipped variant"


@dataclass(frozen=True)
class Playable:
    """A registry with the shipped variants, and every prompt layer a version may name."""

    registry: RoleRegistry
    layers: dict[str, str]

    def spec(self, role: str, version: str) -> AgentSpec:
        from aigentflow.exceptions import ConfigError

        try:
            entry = self.registry.get(role, version)
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        if entry.spec.deterministic:
            raise UsageError(f"{entry.spec.key} calls no model: there is nothing to rate")
        return entry.spec

    def version_names(self, role: str) -> list[str]:
        return [e.spec.version for e in self.registry.versions(role)]


def variant_layers() -> dict[str, str]:
    return {f"agents/{p.parent.name}/{p.name}": p.read_text(encoding="utf-8")
            for p in sorted(VARIANTS_DIR.glob("*/*.md"))}


def playable(paths: object) -> Playable:
    """The project's registry (``ProjectPaths``) plus the shipped variants; spec problems refused."""
    from aigentflow.exceptions import ConfigError

    registry = project_registry(paths)
    try:
        registry.require_valid()
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    layers = {**variant_layers(), **load_layers(paths.prompts_dir, paths.agents_dir)}  # type: ignore[attr-defined]
    for path in sorted(VARIANTS_DIR.glob("*/*.toml")):
        role, version = path.parent.name, path.stem
        if role not in registry.roles() or version in {e.spec.version for e in registry.versions(role)}:
            continue
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        spec = AgentSpec.model_validate({**registry.default(role).spec.model_dump(), **data,
                                         "name": role, "version": version})
        registry.register(spec, source=f"{SHIPPED_VARIANT} ({path.parent.name}/{path.name})")
    return Playable(registry, layers)
