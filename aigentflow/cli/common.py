"""What every command shares: error reporting, JSON output, the project lookup."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from aigentflow.exceptions import AigentflowError

F = TypeVar("F", bound=Callable[..., Any])


def error(message: str) -> None:
    """Print an error for a person: one line saying what was wrong and what to do."""
    typer.echo(f"error: {message}", err=True)


def reports_errors(func: F) -> F:
    """Turn aigentflow's own errors into a clear message and the error's exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AigentflowError as exc:
            error(str(exc))
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def print_json(data: Any) -> None:
    """Machine-readable output for ``--json``: one JSON document on stdout."""
    import json  # here: `aigentflow --help` imports every command's module, and this one with them

    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
