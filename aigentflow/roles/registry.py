"""The role registry: every version of every role, where each comes from, and which one a run uses.

Sources, in order:
1. **Built-in**: packages register their roles through the ``aigentflow.roles`` entry point (a function
   taking the registry); aigentflow's own are in ``actors/specs.py``. The core never imports ``actors/``.
2. **Code**: ``RoleRegistry.register(spec, source=...)`` (what the self-evolution loop calls).
3. **Project files**: ``.aigentflow/agents/<role>/<version>.toml`` or ``.json``. A file names a version
   of a role that exists; what it leaves out is taken from the role's built-in version.

Exactly one version of each role is active: the one ``agents.<role>.version`` names, else the built-in.
A spec file that is wrong (unknown role, bad version, missing class, a prompt layer that does not exist)
is a ``SpecProblem`` naming the file and the field; ``require_valid`` refuses them all at once.
"""

from __future__ import annotations

import functools
import json
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version
from pydantic import ValidationError

from aigentflow.exceptions import ConfigError
from aigentflow.roles.spec import ROLE_NAME, AgentSpec

ENTRY_POINT_GROUP = "aigentflow.roles"
SPEC_SUFFIXES = (".toml", ".json")
BUILTIN = "built-in"


@dataclass(frozen=True)
class Registered:
    """A version of a role and where it came from (``built-in``, ``code: ...`` or a file's path)."""

    spec: AgentSpec
    source: str
    builtin: bool = False


@dataclass(frozen=True)
class SpecProblem:
    where: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.field}: {self.message}"


def _sort_key(entry: Registered) -> Any:
    return Version(entry.spec.version)


@dataclass
class RoleRegistry:
    """See the module docstring."""

    _versions: dict[str, dict[str, Registered]] = field(default_factory=dict)
    problems: list[SpecProblem] = field(default_factory=list)

    def register(self, spec: AgentSpec, source: str = "code", *, builtin: bool = False) -> Registered:
        """Add a version of a role; a second spec for the same role and version is refused."""
        versions = self._versions.setdefault(spec.name, {})
        if spec.version in versions:
            raise ConfigError(f"{spec.key} is registered twice: by {versions[spec.version].source} and by {source}; "
                              "give the new one another version")
        if builtin and any(entry.builtin for entry in versions.values()):
            raise ConfigError(f"{spec.name} has two built-in versions ({source}); exactly one may be built in")
        entry = Registered(spec, source, builtin)
        versions[spec.version] = entry
        return entry

    def roles(self) -> list[str]:
        return sorted(self._versions)

    def versions(self, role: str) -> list[Registered]:
        """Every version of ``role``, oldest first."""
        return sorted(self._versions.get(role, {}).values(), key=_sort_key)

    def default(self, role: str) -> Registered:
        """The version a run uses when its settings name none: the built-in one (else the newest)."""
        entries = self.versions(role)
        if not entries:
            raise ConfigError(f"there is no role {role!r}; roles are: {', '.join(self.roles())}")
        return next((e for e in entries if e.builtin), entries[-1])

    def get(self, role: str, version: str | None = None) -> Registered:
        if role not in self._versions:
            raise ConfigError(f"there is no role {role!r}; roles are: {', '.join(self.roles())} "
                              "(`aigentflow agents list`)")
        if version is None:
            return self.default(role)
        entry = self._versions[role].get(version)
        if entry is None:
            known = ", ".join(f"{e.spec.version} ({e.source})" for e in self.versions(role))
            raise ConfigError(f"{role} has no version {version!r}; its versions are: {known}")
        return entry

    def resolve(self, choices: Mapping[str, Any] | None = None, *, require_approval: bool = True,
                disable_generated: bool = False) -> ActiveRoles:
        """The active version of every role: ``choices`` (role -> version, or the settings' {"version": v}
        tables) where given, else each role's default. An unknown role or version is a ConfigError.

        A generated version (``origin = "generated"``) is refused while it is rejected, or pending approval
        and ``require_approval`` (the ``evolution.requireApproval`` flag); with ``disable_generated`` (the
        emergency switch) the role falls back to its default version instead."""
        picked: dict[str, Registered] = {}
        fallbacks: dict[str, str] = {}
        for role, choice in sorted((choices or {}).items()):
            version = choice.get("version") if isinstance(choice, Mapping) else getattr(choice, "version", choice)
            if role not in self._versions:
                raise ConfigError(f"agents.{role}.version: there is no role {role!r}; roles are: "
                                  f"{', '.join(self.roles())}")
            if version is None:
                continue
            try:
                entry = self.get(role, str(version))
            except ConfigError as exc:
                raise ConfigError(f"agents.{role}.version = {version!r}: {exc}") from None
            if entry.spec.origin == "generated":
                if disable_generated:
                    fallbacks[role] = f"(generated {entry.spec.key} disabled by the emergency switch)"
                    continue
                check_generated(entry.spec, require_approval)
            picked[role] = entry
        for role in self.roles():
            picked.setdefault(role, self.default(role))
        return ActiveRoles({role: entry.spec for role, entry in picked.items()},
                           {role: " ".join(filter(None, (entry.source, fallbacks.get(role))))
                            for role, entry in picked.items()})

    def require_valid(self) -> RoleRegistry:
        """The registry, or a ConfigError naming every spec file that is wrong and the field."""
        if self.problems:
            listed = "\n  ".join(str(p) for p in self.problems)
            raise ConfigError(f"{len(self.problems)} agent spec problem(s):\n  {listed}\n"
                              "Fix or remove the file(s); `aigentflow agents validate` checks them.")
        return self


def check_generated(spec: AgentSpec, require_approval: bool) -> None:
    """Refuse a generated version that may not run: rejected, or awaiting approval while approval is required."""
    if spec.approval == "rejected":
        raise ConfigError(f"agents.{spec.name}.version = {spec.version!r}: {spec.key} is a generated version that "
                          "was rejected; pick another version (`aigentflow agents list`)")
    if spec.approval != "approved" and require_approval:
        raise ConfigError(f"agents.{spec.name}.version = {spec.version!r}: {spec.key} is a generated version "
                          f"awaiting approval; review it (`aigentflow evolve show {spec.key}`) and "
                          f"`aigentflow evolve approve {spec.key}`, or pick another version")


@dataclass(frozen=True)
class ActiveRoles:
    """The version of each role one run uses; plain data, so that it travels to the Orchestrator."""

    specs: dict[str, AgentSpec]
    sources: dict[str, str] = field(default_factory=dict)

    def spec(self, role: str) -> AgentSpec:
        try:
            return self.specs[role]
        except KeyError:
            raise ConfigError(f"there is no role {role!r}; roles are: {', '.join(sorted(self.specs))}") from None

    def lead(self, step: str) -> AgentSpec | None:
        """The role that leads ``step`` (a base step name: analyze, build, test, ...)."""
        return next((s for _, s in sorted(self.specs.items()) if step in s.steps), None)

    def helpers(self, step: str, flags: Mapping[str, Any]) -> list[AgentSpec]:
        """The roles ``step``'s workflow calls that the flags turn on."""
        return [s for _, s in sorted(self.specs.items())
                if step in s.helps and (s.flag is None or flags.get(s.flag, False))]

    def needed(self, steps: Iterable[str], flags: Mapping[str, Any]) -> list[str]:
        """The roles a run of these steps starts: each step's lead, and the helpers its flags turn on."""
        names: set[str] = set()
        for step in steps:
            lead = self.lead(step)
            if lead is not None:
                names.add(lead.name)
            names.update(s.name for s in self.helpers(step, flags))
        return sorted(names)

    def workflow(self, step: str, flags: Mapping[str, Any]) -> str | None:
        """The workflow class (``module:Class``) the Orchestrator runs for ``step``, or None for one call:
        that of a helper the flags turn on and that leads no step of its own (the Project Analyzer's for
        analyze) comes before the lead's; a helper that leads steps (the Git Agent helps build, leads merge)
        has its workflow for those."""
        for helper in self.helpers(step, flags):
            if helper.workflow and not helper.steps:
                return helper.workflow
        lead = self.lead(step)
        return lead.workflow if lead else None

    def versions(self) -> dict[str, dict[str, str]]:
        """What a run records: {role: {"version": v}} for every role."""
        return {role: {"version": spec.version} for role, spec in sorted(self.specs.items())}


# -- loading ------------------------------------------------------------------------------------------------


def builtin_registry() -> RoleRegistry:
    """The roles installed packages register (``aigentflow.roles`` entry points), a new registry each time."""
    registry = RoleRegistry()
    for register in _registrars():
        register(registry)
    return registry


@functools.cache
def _registrars() -> tuple[Callable[[RoleRegistry], None], ...]:
    """The ``aigentflow.roles`` entry points, loaded once a process (finding them reads every installed
    distribution's metadata: milliseconds, on each run's start)."""
    from importlib.metadata import entry_points

    found = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
    if not found:
        raise ConfigError(f"no agent roles are registered (entry point group {ENTRY_POINT_GROUP!r} is empty); "
                          "reinstall aigentflow (`pip install -e .`)")
    return tuple(point.load() for point in found)


def load_registry(agents_dir: Path | None = None, layer_names: Iterable[str] | None = None) -> RoleRegistry:
    """The built-in roles plus a project's spec files under ``agents_dir``; problems are collected on the
    registry (``problems``), not raised: ``require_valid()`` refuses them."""
    registry = builtin_registry()
    if agents_dir is not None and agents_dir.is_dir():
        known_layers = set(layer_names) if layer_names is not None else None
        for path in sorted(agents_dir.glob("*/*")):
            if path.suffix in SPEC_SUFFIXES and path.is_file():
                _load_file(registry, path, agents_dir, known_layers)
    return registry


def _load_file(registry: RoleRegistry, path: Path, agents_dir: Path, known_layers: set[str] | None) -> None:
    where = str(path)
    role, version = path.parent.name, path.stem

    def problem(field_name: str, message: str) -> None:
        registry.problems.append(SpecProblem(where, field_name, message))

    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        return problem("(file)", f"cannot be read: {exc}")
    if not isinstance(data, dict):
        return problem("(file)", "must be a table of fields (a JSON object)")
    if not ROLE_NAME.fullmatch(role) or role not in registry.roles():
        return problem("name", f"unknown role {role!r} (the folder's name); roles are: {', '.join(registry.roles())}")
    if data.get("name", role) != role:
        return problem("name", f"{data['name']!r} does not match its folder {role!r}")
    try:
        Version(version)
    except InvalidVersion:
        return problem("version", f"{version!r} (the file's name) is not a version (PEP 440, e.g. 1.1.0)")
    if str(data.get("version", version)) != version:
        return problem("version", f"{data['version']!r} does not match the file's name {version!r}")
    if data.get("origin", "project") == "builtin":
        return problem("origin", "a project file cannot be a built-in version; use \"project\" or \"generated\"")
    if data.get("origin") == "generated" and data.get("approval") is None:
        return problem("approval", "a generated version needs its approval state: pending, approved or rejected")
    base = {**registry.default(role).spec.model_dump(), "origin": "project", "approval": None}
    try:
        spec = AgentSpec.model_validate({**base, **data, "name": role, "version": version})
    except ValidationError as exc:
        for error in exc.errors():
            problem(".".join(str(part) for part in error["loc"]) or "(file)", error["msg"])
        return None
    if spec.version in {e.spec.version for e in registry.versions(role)}:
        return problem("version", f"{spec.key} already exists ({registry.get(role, version).source}); "
                                  "give this one another version")
    for name in spec.role_layers if not spec.deterministic else ():
        if known_layers is not None and name not in known_layers:
            shown = ", ".join(sorted(n for n in known_layers if n.startswith(("roles/", "agents/")))[:20])
            problem("prompt_layers", f"no prompt layer {name!r} (layers are shipped ones, .aigentflow/prompts/ "
                                     f"and .aigentflow/agents/<role>/*.md; e.g. {shown})")
    for field_name in ("implementation", "workflow"):
        target = getattr(spec, field_name)
        if target and (missing := missing_class(target)):
            problem(field_name, missing)
    if not any(p.where == where for p in registry.problems):
        registry.register(spec, source=str(path.relative_to(agents_dir.parent.parent))
                          if agents_dir.parent.parent in path.parents else where)
    return None


def missing_class(target: str) -> str | None:
    """Why ``module:Class`` cannot be loaded, or None when it can (this imports the module)."""
    import importlib

    module_name, _, name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the file's problem, reported with its field
        return f"module {module_name!r} cannot be imported: {type(exc).__name__}: {exc}"
    if not isinstance(getattr(module, name, None), type):
        return f"module {module_name!r} has no class {name!r}"
    return None


def project_registry(paths: Any) -> RoleRegistry:
    """The registry for a project (``ProjectPaths``): built-ins plus its spec files, prompt layers checked."""
    from aigentflow.prompts.compose import load_layers

    layers = load_layers(paths.prompts_dir, paths.agents_dir)
    return load_registry(paths.agents_dir, layers)
