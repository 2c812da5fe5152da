"""``aigentflow skills``: the skill packs agents may use (built-in, the user's, the project's).

Read-only and quick: these commands read SKILL.md files and never import Ray or litellm. The
project is the git work tree around the working directory (initialised or not); outside one, only
the built-in and the user's skills are seen.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aigentflow.cli.common import print_json, reports_errors

if TYPE_CHECKING:
    from aigentflow.skills import Skill, SkillCatalog

app = typer.Typer(help="Skill packs (SKILL.md folders): list, show, validate.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]

DESCRIPTION_CHARS = 100
"""The most of a description `list` shows (less on a narrow terminal)."""


def _project_root() -> Path | None:
    from aigentflow.project.paths import find_git_root

    return find_git_root(Path.cwd())


def _catalog() -> SkillCatalog:
    from aigentflow.skills import discover

    return discover(_project_root())


def _shorten(text: str, limit: int = DESCRIPTION_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def _summary(skill: Skill) -> dict[str, Any]:
    """A skill without its body, as `list --json` shows it."""
    data = skill.to_dict()
    del data["body"]
    return data


@app.command("list")
@reports_errors
def list_command(as_json: JsonOption = False) -> None:
    """The skills agents may be given: name, source and description of each, project > user > built-in."""
    from aigentflow.skills import skill_dirs

    catalog = _catalog()
    if as_json:
        print_json({
            "skills": [_summary(s) for s in catalog.skills.values()],
            "shadowed": [{**_summary(s), "shadowed_by": catalog.skills[s.name].source} for s in catalog.shadowed],
            "problems": [{"path": p.path, "problem": p.problem} for p in catalog.problems],
            "dirs": [{"source": source, "path": str(path), "exists": path.is_dir()}
                     for source, path in reversed(skill_dirs(_project_root()))],
        })
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if catalog.skills:
        table = Table("name", "source", "description")
        name_width = max(len(name) for name in catalog.skills)
        # One line per skill: the description gets what the name, the source and the borders leave.
        room = max(20, min(DESCRIPTION_CHARS, console.width - name_width - len("built-in") - 10))
        for skill in catalog.skills.values():
            table.add_row(skill.name, skill.source, escape(_shorten(skill.description, room)))
        console.print(table)
    else:
        typer.echo("No skills found.")
    for skill in catalog.shadowed:
        winner = catalog.skills[skill.name]
        typer.echo(f"shadowed: {skill.name} ({skill.source}, {skill.path}) is hidden by the {winner.source} one")
    if catalog.problems:
        count = len(catalog.problems)
        typer.echo(f"{count} malformed skill{'s' if count != 1 else ''} skipped; run `aigentflow skills validate`")


@app.command("show")
@reports_errors
def show_command(
    name: Annotated[str, typer.Argument(help="The skill's name, as `aigentflow skills list` shows it.")],
    as_json: JsonOption = False,
) -> None:
    """One skill as agents get it: where it comes from, its front matter, its files and its instructions."""
    from aigentflow.exceptions import UsageError

    catalog = _catalog()
    skill = catalog.skills.get(name)
    if skill is None:
        broken = [p for p in catalog.problems if Path(p.path).parent.name == name]
        if broken:
            raise UsageError(f"skill {name!r} is malformed and skipped: {broken[0]}. "
                             "Fix it, then check with `aigentflow skills validate`.")
        available = ", ".join(catalog.skills) or "none"
        raise UsageError(f"no skill named {name!r}. Available: {available}.")
    shadowed = [s for s in catalog.shadowed if s.name == name]
    if as_json:
        print_json({**skill.to_dict(), "shadows": [{"source": s.source, "path": str(s.path)} for s in shadowed]})
        return
    lines = [f"{skill.name} ({skill.source})", f"path: {skill.path}", f"description: {skill.description}"]
    if skill.allowed_tools:
        lines.append(f"allowed-tools: {' '.join(skill.allowed_tools)}")
    if skill.license:
        lines.append(f"license: {skill.license}")
    if skill.compatibility:
        lines.append(f"compatibility: {skill.compatibility}")
    if skill.metadata:
        lines.append("metadata: " + ", ".join(f"{k}={v}" for k, v in skill.metadata.items()))
    for label, files in (("scripts", skill.scripts), ("references", skill.references)):
        if files:
            lines.append(f"{label}: {', '.join(files)}")
    lines += [f"warning: {w}" for w in skill.warnings]
    lines += [f"shadows: the {s.source} one at {s.path}" for s in shadowed]
    typer.echo("\n".join(lines) + "\n\n" + skill.body)


def _source_of(folder: Path) -> str:
    """Which place an explicitly given skill folder belongs to; ``project`` when none."""
    from aigentflow.skills import skill_dirs

    seen = {Path(os.path.abspath(folder)), folder.resolve()}  # a symlinked skill folder counts where it is linked
    for source, directory in reversed(skill_dirs(_project_root())):
        places = {Path(os.path.abspath(directory)), directory.resolve()}
        if any(place in path.parents for place in places for path in seen):
            return source
    return "project"


def _folders(path: Path) -> list[Path]:
    """The skill folders named by one argument: a skill folder, its SKILL.md, or a folder of skills."""
    from aigentflow.skills import SKILL_FILE

    if path.name == SKILL_FILE and not path.is_dir():
        return [path.parent]
    if path.is_dir() and not (path / SKILL_FILE).exists():
        children = sorted(p for p in path.iterdir() if p.is_dir() and (p / SKILL_FILE).exists())
        if children:
            return children
    return [path]


@app.command("validate")
@reports_errors
def validate_command(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Skill folders (or their SKILL.md, or folders of skills). Default: every skill found.",
        show_default=False)] = None,
    as_json: JsonOption = False,
) -> None:
    """Check skills against the SKILL.md format; exits 1 when any is malformed."""
    from aigentflow.skills import SkillError, SkillProblem, parse_skill

    if paths:
        skills: list[Skill] = []
        problems: list[SkillProblem] = []
        for folder in (f for p in paths for f in _folders(p)):
            try:
                skills.append(parse_skill(folder, _source_of(folder)))
            except SkillError as exc:
                problems.append(SkillProblem(exc.path, exc.problem))
            except OSError as exc:
                problems.append(SkillProblem(str(folder), f"cannot be read: {exc.strerror or exc}"))
    else:
        catalog = _catalog()
        skills = sorted([*catalog.skills.values(), *catalog.shadowed], key=lambda s: (s.name, str(s.path)))
        problems = catalog.problems
    if as_json:
        print_json({
            "ok": not problems,
            "skills": [{"name": s.name, "source": s.source, "path": str(s.path), "warnings": list(s.warnings)}
                       for s in skills],
            "problems": [{"path": p.path, "problem": p.problem} for p in problems],
        })
    else:
        for skill in skills:
            typer.echo(f"ok: {skill.name} ({skill.source}) {skill.path}")
        for skill in skills:
            for warning in skill.warnings:
                typer.echo(f"{skill.file}: warning: {warning}")
        for problem in problems:
            typer.echo(f"{problem.path}: {problem.problem}")
        warnings = sum(len(s.warnings) for s in skills)
        typer.echo(f"{len(skills)} valid, {len(problems)} malformed, {warnings} warning{'s' if warnings != 1 else ''}")
    if problems:
        raise typer.Exit(1)
