"""The root ``aigentflow`` command: command groups composed with ``add_typer``.

Every command imports what it needs inside its function, so that ``aigentflow --help`` and
``aigentflow status`` start fast and never import Ray or litellm.
"""

from __future__ import annotations

import os

import typer

from aigentflow import __version__
from aigentflow.cli import (
    admin_cmd,
    cluster_cmd,
    config_cmd,
    jobs_cmd,
    mcp_cmd,
    project_cmd,
    release_cmd,
    run_cmd,
    skills_cmd,
    status_cmd,
    trace_cmd,
)

app = typer.Typer(
    name="aigentflow",
    help="Teams of AI agents that carry a feature request from analysis to merged code, on a laptop or a Ray cluster.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aigentflow {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """aigentflow: run a team of AI agents on a git repository."""


app.command("init")(project_cmd.init)
app.command("run")(run_cmd.run)
app.command("resume")(run_cmd.resume)
app.command("demo")(run_cmd.demo)
app.command("status")(status_cmd.status)
app.command("runs")(status_cmd.runs)
app.command("trace")(trace_cmd.trace)
app.add_typer(config_cmd.app, name="config")
app.add_typer(admin_cmd.app, name="admin")
app.add_typer(cluster_cmd.app, name="cluster")
app.command("dashboard")(cluster_cmd.dashboard)
app.add_typer(jobs_cmd.submit_app, name="submit")
app.add_typer(jobs_cmd.jobs_app, name="jobs")
app.command("release")(release_cmd.release)
app.add_typer(release_cmd.ci_app, name="ci")
app.command("gc")(release_cmd.gc)
app.add_typer(skills_cmd.app, name="skills")
app.add_typer(mcp_cmd.app, name="mcp")


def main() -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    app()
