"""Sub-commands that command plugins contribute to a built-in command group (``aigentflow admin ...``).

A plugin module named by an ``aigentflow.commands`` entry point (``evolution/``'s, say) may define
``SUBCOMMANDS = {"<group>": {"<name>": function}}``: ``aigentflow <group> <name>`` is then that function,
made a command as typer makes any. aigentflow never imports the plugin by name: it finds it through the
entry point, so the layers keep their direction (aigentflow does not import evolution). A plugin module
may also contribute data that a built-in command reads, such as ``ROLLBACK_PHASES`` (evolution's ``admin
rollback v2.0``). The plugins' modules are imported only when a group is asked for a name it does not
have, or lists its commands (``--help``): about 15 ms for every plugin of this repository.
"""

from __future__ import annotations

from typing import Any

from aigentflow.cli.main import SETTINGS, Group, _plugin_targets

SUBCOMMANDS = "SUBCOMMANDS"

_FOUND: dict[str, dict[str, Any]] = {}


def plugin_attribute(attribute: str) -> dict[str, Any]:
    """The dicts every plugin module defines as ``attribute``, merged (``SUBCOMMANDS``; ``ROLLBACK_PHASES``, the
    phase rollbacks of ``aigentflow admin rollback``). A plugin that fails to import contributes nothing: its
    own command says why when it is run."""
    if attribute not in _FOUND:
        found: dict[str, Any] = {}
        for value in sorted(set(_plugin_targets().values())):
            module_name = value.split(":")[0]
            try:
                module = __import__(module_name, fromlist=[attribute])
            except Exception:  # noqa: BLE001 - a broken plugin must not break the built-in group
                module = None
            for key, each in (getattr(module, attribute, None) or {}).items():
                if isinstance(each, dict) and isinstance(found.get(key), dict):
                    found[key] = {**found[key], **each}
                else:
                    found[key] = each
        _FOUND[attribute] = found
    return _FOUND[attribute]


def contributions(group: str) -> dict[str, Any]:
    """name -> command function of what the plugins contribute to ``group`` (their ``SUBCOMMANDS[group]``)."""
    return dict(plugin_attribute(SUBCOMMANDS).get(group, {}))


class PluginGroup(Group):
    """A built-in group that also offers its plugins' sub-commands (built-in names win)."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        return names + sorted(n for n in contributions(self.name or "") if n not in names)

    def get_command(self, ctx: Any, name: str) -> Any:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        function = contributions(self.name or "").get(name)
        if function is None:
            return None
        import typer

        holder = typer.Typer(**SETTINGS)
        holder.command(name)(function)
        made = typer.main.get_group(holder).commands[name]
        self.add_command(made, name)
        return made
