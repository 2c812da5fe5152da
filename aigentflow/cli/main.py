"""The root ``aigentflow`` command: every command and command group, made when it is looked up.

``aigentflow status`` imports typer, its own module and what it needs, nothing else: the modules of
the other commands are imported only to run them or by ``--help`` (which lists them without making
their click commands), and every command imports what it needs inside its function. So ``--help``
and ``status`` start fast and never import Ray or litellm.

Help and usage errors are click's plain text (``rich_markup_mode=None``): typer's rich help imports
``typer.rich_utils``, which imports rich with its markdown, syntax and traceback modules (~110 ms under
``python -X importtime``, more than everything else ``--help`` does).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import typer
from typer.core import TyperGroup
from typer.models import TyperInfo

from aigentflow import __version__

COMMANDS: dict[str, str] = {
    "init": "project_cmd:init",
    "run": "run_cmd:run",
    "resume": "run_cmd:resume",
    "demo": "run_cmd:demo",
    "status": "status_cmd:status",
    "runs": "status_cmd:runs",
    "trace": "trace_cmd:trace",
    "dashboard": "cluster_cmd:dashboard",
    "release": "release_cmd:release",
    "gc": "release_cmd:gc",
    "config": "config_cmd:app",
    "flags": "flags_cmd:app",
    "admin": "admin_cmd:app",
    "audit": "audit_cmd:audit",
    "tenants": "tenants_cmd:app",
    "incidents": "incidents_cmd:app",
    "cluster": "cluster_cmd:app",
    "submit": "jobs_cmd:submit_app",
    "jobs": "jobs_cmd:jobs_app",
    "ci": "release_cmd:ci_app",
    "agents": "agents_cmd:app",
    "skills": "skills_cmd:app",
    "mcp": "mcp_cmd:app",
    "vendors": "vendors_cmd:app",
    "deps": "deps_cmd:app",
    "gdpr": "gdpr_cmd:app",
    "compliance": "compliance_cmd:app",
    "models": "models_cmd:app",
    "costs": "costs_cmd:costs",
    "serve": "serve_cmd:serve",
    "tokens": "tokens_cmd:app",
    "schema": "schema_cmd:app",
}
"""Command name -> ``module:attribute`` in ``aigentflow.cli``: a command function or a ``typer.Typer``
(a command group). In this order in ``--help``."""

PLUGIN_GROUP = "aigentflow.commands"
"""Entry points naming more commands (``name = "package.module:attribute"``): how ``evolution/`` adds its
commands (traces, patterns, ui, ...) without aigentflow importing it. Read only when a name is not one of
``COMMANDS`` or every command is listed (``--help``): scanning entry points costs about 30 ms."""


def _plugins() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {point.name: point.value for point in entry_points(group=PLUGIN_GROUP) if point.name not in COMMANDS}


SETTINGS: dict[str, Any] = {"rich_markup_mode": None, "pretty_exceptions_enable": False, "add_completion": False}


def help_line(short_help: str | None, help_text: str | None) -> str:
    """What a group's ``--help`` says of a command: its short help, else its help's first paragraph."""
    return " ".join((short_help or (help_text or "").split("\n\n")[0]).split())


class Group(TyperGroup):
    """A group whose ``--help`` lists each command's whole first paragraph of help (as typer's rich help
    does), not a line cut at the terminal's width."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, text) for name in self.list_commands(ctx) if (text := self.summary(ctx, name)) is not None]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def summary(self, ctx: Any, name: str) -> str | None:
        """The line ``--help`` shows for command ``name``; None for a hidden command."""
        command = self.get_command(ctx, name)
        if command is None or command.hidden:
            return None
        return help_line(command.short_help, command.help)


class LazyCommands(MutableMapping[str, Any]):
    """The root group's commands by name: a command's module is imported, and its click command made
    (as ``app.command(name)`` or ``app.add_typer(..., name=name)`` would make it), the first time the
    command is looked up."""

    def __init__(self, made: Mapping[str, Any]) -> None:
        self.made = dict(made)
        self._listed: list[str] | None = None
        self._extra = [name for name in made if name not in COMMANDS]

    @property
    def _names(self) -> list[str]:
        """Every command name, plugins' included (scanned on first need)."""
        if self._listed is None:
            self._listed = [*COMMANDS, *(n for n in self._extra if n not in COMMANDS)]
            self._listed += [n for n in sorted(_plugin_targets()) if n not in self._listed]
        return self._listed

    def __getitem__(self, name: str) -> Any:
        if name not in self.made:
            if name not in COMMANDS and name not in self._names:
                raise KeyError(name)
            self.made[name] = _make(name)
        return self.made[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self.made[name] = command
        if name not in self._names:
            self._names.append(name)
        if name not in COMMANDS:
            self._extra.append(name)

    def __delitem__(self, name: str) -> None:
        if name not in self._names:
            raise KeyError(name)
        self._names.remove(name)
        self.made.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in COMMANDS or name in self.made or name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)


_PLUGIN_TARGETS: dict[str, str] = {}


def _plugin_targets() -> dict[str, str]:
    if not _PLUGIN_TARGETS:
        _PLUGIN_TARGETS.update(_plugins() or {"": ""})
    return {name: value for name, value in _PLUGIN_TARGETS.items() if name}


def _target(name: str) -> Any:
    """The command function or ``typer.Typer`` of ``COMMANDS[name]`` (or a plugin's), importing its module."""
    if name in COMMANDS:
        module, attribute = COMMANDS[name].split(":")
        module = f"aigentflow.cli.{module}"
    else:
        module, attribute = _plugin_targets()[name].split(":")
    # __import__, not importlib.import_module: only an import through __import__ (an import statement)
    # shows in `python -X importtime`, which the tests and benchmarks/cli_latency.py read.
    return getattr(__import__(module, fromlist=[attribute]), attribute)


def _make(name: str) -> Any:
    """The click command (or group) of ``COMMANDS[name]``."""
    target = _target(name)
    holder = typer.Typer(**SETTINGS)
    if isinstance(target, typer.Typer):
        own = target.info.cls  # a group class of its own (``plugins.PluginGroup``), else Group
        holder.add_typer(target, name=name, cls=own if isinstance(own, type) and issubclass(own, Group) else Group)
    else:
        holder.command(name)(target)
    return typer.main.get_group(holder).commands[name]


class LazyGroup(Group):
    """The root group: its commands are ``COMMANDS``, each made when it is first looked up."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.commands = LazyCommands(self.commands)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def summary(self, ctx: Any, name: str) -> str | None:
        """As ``Group.summary``, but from the function or typer app of a command not made yet, as typer
        would find its help: ``--help`` does not make every command (typer reads the type hints of
        every parameter to make one: about 35 ms for them all)."""
        if name in self.commands.made or (name not in COMMANDS and name not in _plugin_targets()):
            return super().summary(ctx, name)
        target = _target(name)
        if isinstance(target, typer.Typer):
            info = typer.main.solve_typer_info_defaults(TyperInfo(target, name=name))
            return None if info.hidden else help_line(info.short_help, info.help)
        return help_line(None, inspect.getdoc(target))


app = typer.Typer(
    name="aigentflow",
    help="Teams of AI agents that carry a feature request from analysis to merged code, on a laptop or a Ray cluster.",
    no_args_is_help=True,
    cls=LazyGroup,
    **SETTINGS,
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


def main() -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    app()
