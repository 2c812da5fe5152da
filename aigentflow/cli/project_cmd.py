"""`aigentflow init`: create `.aigentflow/` in a git repository and record the project's facts."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated

import typer

from aigentflow.cli.common import print_json, reports_errors

GITIGNORE = ("# aigentflow's own state: keep config.toml, prompts/ and cassettes/ in git if you like.\n"
             "state.db*\nruns/\ntraces/\nworktrees/\n")
CONFIG_TEMPLATE = """# aigentflow project configuration. `aigentflow config list` shows every key and where its value
# comes from; `aigentflow config set KEY VALUE` changes this file.
"""


EXCLUDE_LINE = "/.aigentflow/"
EXCLUDE_COMMENT = "# aigentflow's state, from `aigentflow init` (`aigentflow init --no-exclude` removes it)"
KEPT_MARKER = "# aigentflow: .aigentflow/ stays visible to git (`aigentflow init --exclude` lists it here again)"


def initialise(path: Path, *, git_init: bool = False, exclude: bool | None = None) -> dict:
    """Create or refresh the project's state; returns the project record. Idempotent.

    ``exclude``: list ``.aigentflow/`` in the repository's ``info/exclude`` (never the user's
    .gitignore) so that git status stays clean; False removes it and is remembered; None (the
    default) keeps the last choice, and excludes the first time."""
    from aigentflow.exceptions import NotAGitRepository
    from aigentflow.project.facts import detect_project
    from aigentflow.project.paths import ProjectPaths, find_git_root
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
    git_exclude = git_exclude_state(root, exclude)
    store = SQLiteRunStore(paths.database, create=True)
    try:
        facts, test_source = detect_project(root)
        store.upsert_project(facts.name, facts.model_dump(mode="json"))
        project = store.get_project() or {}
    finally:
        store.close()
    project["test_command_source"] = test_source
    project["state_dir"] = str(paths.state_dir)
    project["git_exclude"] = git_exclude
    return project


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-c", "core.hooksPath=/dev/null", *args], cwd=root, capture_output=True,
                          text=True, check=False)


def git_exclude_state(root: Path, exclude: bool | None) -> dict[str, str]:
    """List ``/.aigentflow/`` in the repository's info/exclude (shared by its worktrees) unless the user
    opted out: ``False`` removes the line and remembers that (a comment there), ``None`` does what the
    last choice was, ``True`` lists it again. {"file", "action": added, present, ignored, tracked,
    removed or kept}."""
    where = _git(root, "rev-parse", "--git-path", "info/exclude").stdout.strip() or ".git/info/exclude"
    file = (root / where).resolve()
    lines = file.read_text(encoding="utf-8").splitlines() if file.is_file() else []
    report = {"file": str(file)}
    if exclude is None and KEPT_MARKER in lines:
        return {**report, "action": "kept"}
    if exclude is False:
        ours = EXCLUDE_LINE in lines
        _write_lines(file, [line for line in lines if line not in (EXCLUDE_LINE, EXCLUDE_COMMENT, KEPT_MARKER)]
                     + [KEPT_MARKER])
        return {**report, "action": "removed" if ours else "kept"}
    lines = [line for line in lines if line != KEPT_MARKER]
    if EXCLUDE_LINE in lines:
        action = "present"
    elif exclude is None and _git(root, "ls-files", "--", ".aigentflow").stdout.strip():
        action = "tracked"  # the user keeps some of it in git: theirs to decide
    elif _git(root, "check-ignore", "-q", ".aigentflow/").returncode == 0:
        action = "ignored"
    else:
        action, lines = "added", [*lines, EXCLUDE_COMMENT, EXCLUDE_LINE]
    _write_lines(file, lines)
    return {**report, "action": action}


def _write_lines(file: Path, lines: list[str]) -> None:
    before = file.read_text(encoding="utf-8") if file.is_file() else None
    text = "".join(f"{line}\n" for line in lines)
    if text != before:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text, encoding="utf-8")


def _exclude_text(report: dict[str, str], root: Path) -> str:
    file = Path(report["file"])
    shown = str(file.relative_to(root)) if file.is_relative_to(root) else str(file)
    return {
        "added": f".aigentflow/ added to {shown} (not .gitignore); --no-exclude to undo",
        "present": f".aigentflow/ is in {shown}",
        "tracked": ".aigentflow/ has files tracked in git: not added to info/exclude (--exclude adds it)",
        "ignored": ".aigentflow/ is already ignored by git",
        "removed": f".aigentflow/ removed from {shown}: git status shows it again",
        "kept": ".aigentflow/ stays visible to git (you chose --no-exclude; --exclude to change that)",
    }[report["action"]]


def _record_integration_branch(paths) -> None:
    """The branch checked out now becomes ``git.integration_branch``, unless one is configured."""
    from aigentflow.config.loader import load_config, set_value

    if load_config(paths.root).get("git.integration_branch"):
        return
    branch = _git(paths.root, "symbolic-ref", "--quiet", "--short", "HEAD").stdout.strip()
    if branch:
        set_value(paths.config_file, "git.integration_branch", branch)


@reports_errors
def init(
    path: Annotated[Path, typer.Argument(help="Directory inside the git repository.")] = Path("."),
    git_init: Annotated[bool, typer.Option("--git-init", help="Create a git repository if there is none.")] = False,
    exclude: Annotated[bool | None, typer.Option("--exclude/--no-exclude", show_default=False,
                       help="List .aigentflow/ in .git/info/exclude (not .gitignore) so git status stays clean "
                            "(the default); --no-exclude keeps it visible, e.g. to commit its config.toml, and "
                            "is remembered.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Set up aigentflow in a git repository and record its facts (safe to run again)."""
    project = initialise(path, git_init=git_init, exclude=exclude)
    if json_out:
        print_json(project)
        return
    facts = project["facts"]
    languages = ", ".join(f"{k} ({v})" for k, v in facts["languages"].items()) or "none found"
    typer.echo(f"Initialised {project['state_dir']}")
    typer.echo(f"  project:         {facts['name']}")
    typer.echo(f"  languages:       {languages}")
    typer.echo(f"  package manager: {facts['package_manager'] or 'unknown'}")
    source = f" (from {project['test_command_source']})" if project["test_command_source"] else ""
    typer.echo(f"  test command:    {facts['test_command'] or 'unknown'}{source}")
    typer.echo(f"  size:            {facts['file_count']} files, {facts['line_count']} lines")
    typer.echo(f"  git:             {_exclude_text(project['git_exclude'], Path(project['state_dir']).parent)}")
