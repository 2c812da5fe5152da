"""`aigentflow init`: create `.aigentflow/` in a git repository and record the project's facts."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated

import typer

from aigentflow.cli.common import print_json, reports_errors

GITIGNORE = "# aigentflow's own state: keep config.toml, prompts/ and cassettes/ in git if you like.\nstate.db*\nruns/\ntraces/\nworktrees/\n"
CONFIG_TEMPLATE = """# aigentflow project configuration. `aigentflow config list` shows every key and where its value
# comes from; `aigentflow config set KEY VALUE` changes this file.
"""


def initialise(path: Path, *, git_init: bool = False) -> dict:
    """Create or refresh the project's state; returns the project record. Idempotent."""
    from aigentflow.exceptions import NotAGitRepository
    from aigentflow.paths import ProjectPaths, find_git_root
    from aigentflow.project import detect_facts
    from aigentflow.store.sqlite import SQLiteRunStore

    path = path.resolve()
    if not path.is_dir():
        raise NotAGitRepository(f"{path} is not a directory.")
    root = find_git_root(path)
    if root is None:
        if not git_init:
            raise NotAGitRepository(
                f"{path} is not inside a git repository. Run `git init` first, or `aigentflow init --git-init` "
                "to create one here."
            )
        subprocess.run(["git", "init", "-q", str(path)], check=True)
        root = path
    paths = ProjectPaths(root)
    paths.state_dir.mkdir(exist_ok=True)
    for name, text in ((".gitignore", GITIGNORE), ("config.toml", CONFIG_TEMPLATE)):
        target = paths.state_dir / name
        if not target.exists():
            target.write_text(text)
    _record_integration_branch(paths)
    store = SQLiteRunStore(paths.database, create=True)
    try:
        facts = detect_facts(root)
        store.upsert_project(facts.name, facts.model_dump(mode="json"))
        project = store.get_project() or {}
    finally:
        store.close()
    project["state_dir"] = str(paths.state_dir)
    return project


def _record_integration_branch(paths) -> None:
    """The branch checked out now becomes ``git.integration_branch``, unless one is configured."""
    from aigentflow.config import load_config, set_value

    if load_config(paths.root).get("git.integration_branch"):
        return
    branch = subprocess.run(["git", "symbolic-ref", "--quiet", "--short", "HEAD"], cwd=paths.root,
                            capture_output=True, text=True).stdout.strip()
    if branch:
        set_value(paths.config_file, "git.integration_branch", branch)


@reports_errors
def init(
    path: Annotated[Path, typer.Argument(help="Directory inside the git repository.")] = Path("."),
    git_init: Annotated[bool, typer.Option("--git-init", help="Create a git repository if there is none.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Set up aigentflow in a git repository and record its facts (safe to run again)."""
    project = initialise(path, git_init=git_init)
    if json_out:
        print_json(project)
        return
    facts = project["facts"]
    languages = ", ".join(f"{k} ({v})" for k, v in facts["languages"].items()) or "none found"
    typer.echo(f"Initialised {project['state_dir']}")
    typer.echo(f"  project:         {facts['name']}")
    typer.echo(f"  languages:       {languages}")
    typer.echo(f"  package manager: {facts['package_manager'] or 'unknown'}")
    typer.echo(f"  test command:    {facts['test_command'] or 'unknown'}")
    typer.echo(f"  size:            {facts['file_count']} files, {facts['line_count']} lines")
