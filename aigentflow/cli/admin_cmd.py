"""`aigentflow admin`: operator switches. `emergency --pause-all` stops every run at its next step
boundary (and before any model call), persisted until `--resume-all`."""

from __future__ import annotations

from typing import Annotated

import typer

from aigentflow.cli.common import print_json, reports_errors

app = typer.Typer(help="Operator commands: emergency switches.", no_args_is_help=True)


@app.command()
@reports_errors
def emergency(
    pause_all: Annotated[bool, typer.Option("--pause-all", help="Stop every run at its next step boundary.")] = False,
    resume_all: Annotated[bool, typer.Option(
        "--resume-all", help="Lift --pause-all (paused runs need `aigentflow resume`).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Emergency switches; with no option, show them."""
    from aigentflow.exceptions import UsageError
    from aigentflow.project.paths import locate_project
    from aigentflow.run.engine import PAUSE_ALL
    from aigentflow.store.sqlite import SQLiteRunStore

    if pause_all and resume_all:
        raise UsageError("--pause-all and --resume-all contradict each other; give one.")
    store = SQLiteRunStore(locate_project().database)
    try:
        if pause_all or resume_all:
            store.set_control(PAUSE_ALL, pause_all)
            store.append_audit("admin.emergency", None, {"pause_all": pause_all})
        state = bool(store.get_control(PAUSE_ALL, False))
    finally:
        store.close()
    if json_out:
        print_json({"pause_all": state})
    else:
        typer.echo(f"pause-all is {'ON: runs stop at their next step boundary' if state else 'off'}")
