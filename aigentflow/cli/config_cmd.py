"""`aigentflow config`: show and change the layered configuration.

Config and pydantic are imported inside the commands so that `aigentflow --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aigentflow.cli.common import print_json, reports_errors

if TYPE_CHECKING:
    from aigentflow.config.loader import EffectiveConfig

app = typer.Typer(help="Show and change layered configuration.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
UserOption = Annotated[
    bool, typer.Option("--user", help="Change the user file instead of the project's.")
]


def _effective() -> EffectiveConfig:
    """The configuration seen from the working directory, with the process environment."""
    from aigentflow.config.loader import load_config
    from aigentflow.project.paths import find_git_root

    return load_config(find_git_root(Path.cwd()))


def _target_file(user: bool) -> Path:
    """The file `set`/`unset` change: the user's, or the initialised project's."""
    if user:
        from aigentflow.config.loader import user_config_file

        return user_config_file()
    from aigentflow.project.paths import locate_project

    return locate_project(must_exist=True).config_file


def _is_default(source: str) -> bool:
    return source == "default" or source.startswith("preset ")


@app.command("list")
@reports_errors
def list_command(
    as_json: JsonOption = False,
    show_defaults: Annotated[
        bool,
        typer.Option(
            "--show-defaults/--hide-defaults",
            help="Also list keys left at their default or preset value.",
        ),
    ] = True,
) -> None:
    """List every key with its effective value and the layer it came from."""
    from aigentflow.config.loader import display_value

    rows = [row for row in _effective().items() if show_defaults or not _is_default(row[2])]
    if as_json:
        print_json([{"key": key, "value": value, "source": src} for key, value, src in rows])
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("key", "value", "source")
    for key, value, source in rows:
        table.add_row(key, display_value(value), source)
    Console().print(table)


@app.command("get")
@reports_errors
def get_command(
    key: Annotated[str, typer.Argument(help="Dotted key, e.g. model.name.")],
    as_json: JsonOption = False,
) -> None:
    """Print the effective value of one key."""
    from aigentflow.config.loader import display_value

    effective = _effective()
    value = effective.get(key)
    if as_json:
        print_json({"key": key, "value": value, "source": effective.sources[key]})
    else:
        typer.echo(display_value(value))


@app.command("set")
@reports_errors
def set_command(
    key: Annotated[str, typer.Argument(help="Dotted key, e.g. model.temperature.")],
    value: Annotated[str, typer.Argument(help="New value, e.g. 0.2, true, a,b.")],
    user: UserOption = False,
) -> None:
    """Validate a value and write it into the project (or user) config file."""
    from aigentflow.config.loader import set_value

    path = _target_file(user)
    set_value(path, key, value)
    typer.echo(f"{key} = {value} written to {path}")


@app.command("unset")
@reports_errors
def unset_command(
    key: Annotated[str, typer.Argument(help="Dotted key to remove from the file.")],
    user: UserOption = False,
) -> None:
    """Remove a key from the project (or user) config file, so lower layers show through."""
    from aigentflow.config.loader import unset_value

    path = _target_file(user)
    if unset_value(path, key):
        typer.echo(f"{key} removed from {path}")
    else:
        typer.echo(f"{key} was not set in {path}")
