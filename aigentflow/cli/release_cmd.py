"""`aigentflow release`, `aigentflow ci init|run` and `aigentflow gc`: the logic lives in
``aigentflow.release``, ``aigentflow.checks.ci`` and ``aigentflow.run.gc``; nothing here imports Ray or litellm."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aigentflow.cli.common import print_json, reports_errors

if TYPE_CHECKING:
    from aigentflow.config.settings import BuildSettings

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Show what would be done; change nothing.")]
OUTPUT_TAIL_LINES = 40

ci_app = typer.Typer(help="The project's CI: a GitHub Actions workflow, and the same gate run locally.",
                     no_args_is_help=True)


def _build_settings(root: Path) -> BuildSettings:
    from aigentflow.config.loader import load_config

    return load_config(root).settings.build


@reports_errors
def release(
    version: Annotated[str | None, typer.Option("--version", help="Release this version (X.Y.Z) instead of "
                                                "the one computed from the project's version and commits.")] = None,
    dry_run: DryRunOption = False,
    json_out: JsonOption = False,
) -> None:
    """Tag the integration branch with the next version and prepend its section to CHANGELOG.md."""
    from aigentflow.release import release as do_release

    report = do_release(Path.cwd(), version=version, dry_run=dry_run)
    if json_out:
        print_json(report)
        return
    based_on = report["based_on"]["text"]
    how = "as asked with --version; " if version is not None and not report["resumed"] else ""
    count = report["commits"]
    since = f"{how}{based_on}; {count} commit{'' if count == 1 else 's'}"
    if dry_run:
        typer.echo(f"Would release {report['tag']} on {report['branch']} ({since}). Nothing was changed.")
    elif report["resumed"]:
        typer.echo(f"Finished {report['tag']}: its changelog commit {report['commit'][:10]} was already on "
                   f"{report['branch']}; tagged and recorded it.")
    else:
        typer.echo(f"Released {report['tag']} on {report['branch']} ({since}): CHANGELOG.md committed as "
                   f"{report['commit'][:10]} and tagged.")
    for note in report["notes"]:
        typer.echo(f"Note: {note}")
    typer.echo("\n" + report["changelog"].rstrip())


@ci_app.command("init")
@reports_errors
def ci_init(
    force: Annotated[bool, typer.Option("--force", help="Overwrite aigentflow's workflow, and write it even "
                                        "beside the project's own workflows.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Write .github/workflows/aigentflow.yml: the command `ci run` runs, on every push and pull request."""
    from aigentflow.checks.ci import write_workflow
    from aigentflow.project.paths import locate_project

    root = locate_project().root
    written = write_workflow(root, _build_settings(root), force=force)
    if json_out:
        print_json(written)
        return
    for warning in written["warnings"]:
        typer.echo(f"warning: {warning}", err=True)
    setup = f"; setup: {', '.join(written['ecosystems'])}" if written["ecosystems"] else ""
    typer.echo(f"Wrote {_shown(root, written['path'])}: runs `{written['command']}` ({written['command_source']}, "
               f"what `aigentflow ci run` runs) on push and pull request{setup}.")
    if written["python"]:
        python = written["python"]
        typer.echo(f"Python {', '.join(python['versions'])}: {python['reason']}.")
    typer.echo("Commit it to turn it on.")


def _tail(text: str) -> str:
    return "\n".join(text.rstrip().splitlines()[-OUTPUT_TAIL_LINES:])


@ci_app.command("run")
@reports_errors
def ci_run(json_out: JsonOption = False) -> None:
    """Run the CI command (build.ci_command, else the test command) in the sandbox; exit 1 if it fails."""
    from aigentflow.checks.ci import environment_hint, gate_command, run_gate, unconfined_note
    from aigentflow.project.paths import locate_project

    root = locate_project().root
    build = _build_settings(root)
    command = gate_command(root, build)
    result = run_gate(root, build)
    if json_out:
        print_json({"command": command, "passed": result.ok, "summary": result.summary(), **result.to_record()})
    elif result.ok:
        typer.echo(f"CI gate passed: {result.summary()}")
    else:
        for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
            if text.strip():
                typer.echo(f"--- {name} (last {OUTPUT_TAIL_LINES} lines) ---\n{_tail(text)}", err=True)
        typer.echo(f"CI gate failed: {result.summary()}", err=True)
        if hint := environment_hint(result, build.env_passthrough):
            typer.echo(hint, err=True)
    if (note := unconfined_note(result)) and not json_out:
        typer.echo(note, err=True)
    if not result.ok:
        raise typer.Exit(1)


@reports_errors
def gc(
    dry_run: DryRunOption = False,
    everything: Annotated[bool, typer.Option("--all", help="Also remove resumable runs' worktrees and "
                                             "failed runs' unmerged branches (never a running run's).")] = False,
    json_out: JsonOption = False,
) -> None:
    """Remove the worktrees and branches of finished and abandoned runs."""
    from aigentflow.project.paths import locate_project
    from aigentflow.run.gc import collect_garbage
    from aigentflow.store.sqlite import SQLiteRunStore

    paths = locate_project()
    store = SQLiteRunStore(paths.database)
    try:
        report = collect_garbage(paths.root, store, dry_run=dry_run, everything=everything)
    finally:
        store.close()
    if json_out:
        print_json(report.to_dict())
        return
    if not report.removed and not report.kept:
        typer.echo("Nothing to clean up: no run has worktrees or branches.")
    verb = "Would remove" if dry_run else "Removed"
    for item in report.removed:
        typer.echo(f"{verb} {item.kind} {_shown(paths.root, item.name)} (run {item.run_id}, "
                   f"{item.state or 'not in the store'})")
    for item in report.kept:
        typer.echo(f"Kept {item.kind} {_shown(paths.root, item.name)}: {item.reason}")


def _shown(root: Path, name: str) -> str:
    path = Path(name)
    return str(path.relative_to(root)) if path.is_absolute() and path.is_relative_to(root) else name
