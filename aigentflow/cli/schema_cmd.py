"""``aigentflow schema list|show|export``: the JSON Schemas of what aigentflow prints for machines
(each command's ``--json``, the events of `run --json`) and of what its agents return
(``aigentflow.genui.registry``). Needs no project."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aigentflow.cli.common import print_json, reports_errors

app = typer.Typer(help="The JSON Schemas of command results, agent outputs and run events: list, show, export.",
                  no_args_is_help=True)


@app.command("list")
@reports_errors
def list_schemas(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every published schema: its name, kind (command, agent, step, event) and what it describes."""
    from aigentflow.cli.plain import echo, table
    from aigentflow.genui.registry import listing

    rows = listing()
    if as_json:
        print_json(rows)
        return
    echo(table(["name", "kind", "model", "describes"], [[r["name"], r["kind"], r["title"], r["description"]]
                                                       for r in rows], title=f"{len(rows)} schemas", flexible=[3]))


@app.command("show")
@reports_errors
def show(name: Annotated[str, typer.Argument(help="A schema's name (`aigentflow schema list`).")]) -> None:
    """Print schema NAME as JSON Schema (draft 2020-12)."""
    from aigentflow.genui.registry import json_schema

    print_json(json_schema(name))


@app.command("export")
@reports_errors
def export(directory: Annotated[Path, typer.Argument(help="Where to write the files (made if missing).")],
           as_json: Annotated[bool, typer.Option("--json", help="Print the files written as JSON.")] = False) -> None:
    """Write every schema to DIRECTORY as NAME.schema.json."""
    from aigentflow.cli.plain import echo
    from aigentflow.genui.registry import export as write

    written = write(directory)
    if as_json:
        print_json({"directory": str(directory.resolve()), "files": [p.name for p in written]})
        return
    echo(f"{len(written)} schemas written to {directory.resolve()}")
