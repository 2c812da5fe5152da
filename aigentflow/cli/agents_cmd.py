"""``aigentflow agents``: the roles, their versions, which one runs use and where each comes from.

Read-only and quick (no Ray, no litellm): the registry is the built-in roles (``actors/specs.py``, through
the ``aigentflow.roles`` entry point) plus the project's ``.aigentflow/agents/<role>/<version>.toml|json``
files; the active version is the configuration's ``agents.<role>.version`` (else the built-in one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aigentflow.cli.common import print_json, reports_errors

app = typer.Typer(help="Agent roles and their versions: list, show, validate.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _project() -> tuple[Any, Any]:
    """(ProjectPaths or None, the registry with the project's spec files)."""
    from aigentflow.project.paths import ProjectPaths, find_git_root
    from aigentflow.roles.registry import load_registry, project_registry

    root = find_git_root(Path.cwd())
    if root is None:
        return None, load_registry()
    paths = ProjectPaths(root)
    return paths, project_registry(paths)


def _choices(paths: Any) -> dict[str, Any]:
    from aigentflow.config.loader import load_config

    return dict(load_config(paths.root if paths else None).settings.agents)


def _active(registry: Any, choices: dict[str, Any]) -> dict[str, str]:
    """role -> active version; a choice naming a version that does not exist shows as such (validate says why)."""
    active = {role: registry.default(role).spec.version for role in registry.roles()}
    for role, choice in choices.items():
        if role in active and choice.version:
            active[role] = choice.version
    return active


@app.command("list")
@reports_errors
def list_agents(as_json: JsonOption = False) -> None:
    """Every role and its versions: which one is active and where each comes from."""
    paths, registry = _project()
    active = _active(registry, _choices(paths))
    rows = [{"role": role, "version": entry.spec.version, "active": entry.spec.version == active[role],
             "source": entry.source, "origin": entry.spec.origin, "approval": entry.spec.approval,
             "tenant": entry.spec.tenant, "steps": list(entry.spec.steps), "helps": list(entry.spec.helps),
             "implementation": entry.spec.implementation}
            for role in registry.roles() for entry in registry.versions(role)]
    if as_json:
        print_json({"agents": rows, "problems": [str(p) for p in registry.problems]})
        return
    from aigentflow.cli.plain import echo, table

    echo(table(["ROLE", "VERSION", "ACTIVE", "STEPS", "ORIGIN", "SOURCE"],
               [[r["role"], r["version"], "*" if r["active"] else "",
                 ", ".join(r["steps"] + [f"({h})" for h in r["helps"]]) or "-",
                 r["origin"] + (f" ({r['approval']})" if r["approval"] else "")
                 + (f", tenant {r['tenant']}" if r["tenant"] else ""), r["source"]] for r in rows]))
    for role, version in sorted(active.items()):
        if version not in {e.spec.version for e in registry.versions(role)}:
            echo(f"agents.{role}.version = {version!r} names no version of {role} (`aigentflow agents validate`)")
    if registry.problems:
        echo(f"{len(registry.problems)} spec file(s) with problems were left out; `aigentflow agents validate`")


@app.command("show")
@reports_errors
def show(role: Annotated[str, typer.Argument(help="The role, e.g. analyst.")],
         version: Annotated[str | None, typer.Option("--version", help="A version (default: the active one).")] = None,
         as_json: JsonOption = False) -> None:
    """One version of a role, every field (the active version unless --version)."""
    paths, registry = _project()
    active = _active(registry, _choices(paths))
    entry = registry.get(role, version or active.get(role))
    data = {**entry.spec.model_dump(mode="json"), "source": entry.source,
            "active": entry.spec.version == active.get(role),
            "versions": [e.spec.version for e in registry.versions(role)]}
    if as_json:
        print_json(data)
        return
    from aigentflow.cli.plain import echo

    echo(f"{entry.spec.key}{'  (active)' if data['active'] else ''}")
    echo(f"  source: {entry.source}")
    for name, value in entry.spec.model_dump(mode="json").items():
        if name in ("name", "version"):
            continue
        shown = ", ".join(value) if isinstance(value, list) else "-" if value in (None, "") else str(value)
        echo(f"  {name}: {shown}")
    echo(f"  versions: {', '.join(data['versions'])}")


@app.command("validate")
@reports_errors
def validate(as_json: JsonOption = False) -> None:
    """Check the project's spec files and the agents.<role>.version settings; exit 2 on any problem."""
    from aigentflow.exceptions import ConfigError

    paths, registry = _project()
    problems = [str(p) for p in registry.problems]
    try:
        roles = registry.resolve(_choices(paths))
    except ConfigError as exc:
        problems.append(str(exc))
        roles = None
    files = [e.source for role in registry.roles() for e in registry.versions(role) if not e.builtin]
    if as_json:
        print_json({"ok": not problems, "problems": problems, "spec_files": files,
                    "active": roles.versions() if roles else None})
    else:
        from aigentflow.cli.plain import echo

        for problem in problems:
            echo(f"error: {problem}")
        if not problems:
            echo(f"ok: {len(registry.roles())} roles, {len(files)} spec file(s) valid; active: "
                 + ", ".join(f"{s.key}" for _, s in sorted(roles.specs.items())))
    if problems:
        raise typer.Exit(2)
