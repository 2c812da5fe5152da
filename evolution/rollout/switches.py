"""The self-evolution kill switch: ``.aigentflow/evolution/disabled.json`` (when, why) and the store control
``emergency.disable_evolution`` (``aigentflow admin emergency --disable-evolution``), kept together by
``aigentflow.roles.evolution_switch``: either record of it turns evolution off. While it is on, tournaments
stop at their next match boundary and refuse to start, canaries neither advance nor route runs to a
candidate (the canary file is what aigentflow's role resolution reads; disabling evolution removes a
candidate's share, see ``canary.py``), and ``patterns mine`` and ``evolve generate`` refuse."""

from __future__ import annotations

from pathlib import Path

from aigentflow.roles import evolution_switch


def switch_file(project_root: Path) -> Path:
    return Path(project_root) / ".aigentflow" / "evolution" / "disabled.json"


def evolution_disabled(project_root: Path) -> str | None:
    """Why self-evolution is off (``--disable-evolution``), or None while it is on."""
    return evolution_switch.evolution_off(Path(project_root) / ".aigentflow")


def disable_evolution(project_root: Path, reason: str) -> None:
    evolution_switch.set_evolution_disabled(Path(project_root) / ".aigentflow", True, reason)


def enable_evolution(project_root: Path) -> bool:
    return evolution_switch.set_evolution_disabled(Path(project_root) / ".aigentflow", False)


def refuse_if_disabled(project_root: Path, what: str) -> None:
    """A UsageError (exit 2) while the self-evolution kill switch is on."""
    from aigentflow.exceptions import UsageError

    if reason := evolution_disabled(project_root):
        raise UsageError(f"self-evolution is disabled ({reason}); {what}. Lift it with "
                         "`aigentflow admin emergency --enable-evolution`.")
