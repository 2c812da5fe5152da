"""Fault points: the places crash tests make a process die, or act as if a resource were missing.

Production code marks a point and carries on; with no plan installed (always, outside tests) a
mark is one dict lookup, and nothing here reads the environment per call::

    faults.point("engine.transition", n)          # may SIGKILL a process here
    faults.point("merge.after-sync")
    if faults.enabled("build.force-remote"): ...   # a switch

Tests turn faults on with ONE environment variable of the driver (``aigentflow run``/``resume``,
``jobs/run.py``), ``AIGENTFLOW_FAULTS``: a comma-separated list of entries, each either

- ``ACTION@POINT`` or ``ACTION@POINT:ARG`` (a point that takes an argument fires only for that one), or
- ``SWITCH``,

for example ``AIGENTFLOW_FAULTS="kill-driver@engine.transition:3"``,
``"kill-self@merge.after-sync"``, ``"build.force-remote,kill-driver@engine.step:merge"``.

Actions: ``kill-driver`` SIGKILLs the driver that parsed the plan (its pid travels in the plan);
``kill-self`` SIGKILLs the process reaching the point. Points and switches are listed in ``POINTS``
and ``SWITCHES``; anything else (an unknown name, a missing or unexpected argument, a bad number)
is a ``UsageError`` naming the entry.

The driver parses the variable once (``from_environment``) and the plan, plain data, travels to the
actors in what they already get (``EngineOptions.faults``, the Git Agent's arguments), so it works on
an already-running cluster whose workers never saw the driver's environment; each actor process
activates it with ``install(plan)``. A process holds one plan at a time: ``install`` replaces it
(``install(None)`` turns every fault off).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import NoReturn

from aigentflow.exceptions import UsageError

ENV = "AIGENTFLOW_FAULTS"

ACTIONS = {
    "kill-driver": "SIGKILL the driver process that parsed the plan",
    "kill-self": "SIGKILL the process that reaches the point",
}
POINTS: dict[str, tuple[str | None, str]] = {
    # name: (its argument, or None when it takes none; where it is)
    "engine.transition": ("N", "the Orchestrator, after the Nth state transition of this drive (N from 1)"),
    "engine.step": ("STEP", "the Orchestrator, before committing the result of step STEP (e.g. analyze, merge)"),
    "merge.before-sync": (None, "moving a checked-out branch: journal written, worktree not moved yet"),
    "merge.after-sync": (None, "moving a checked-out branch: worktree moved, branch ref not moved yet"),
    "gdpr.erase": ("N", "`aigentflow gdpr erase`: journal written, before applying its Nth edit (N from 1)"),
}
SWITCHES = {
    "build.force-remote": "a work-breakdown task's build acts as if its node lacked the repository (git bundles)",
}


@dataclass(frozen=True)
class Fault:
    point: str
    """A name from ``POINTS``, or from ``SWITCHES`` (then ``action`` is None)."""
    action: str | None = None
    arg: str | None = None


@dataclass(frozen=True)
class FaultPlan:
    """The faults a test asked for; plain data (it travels to the actors)."""

    faults: tuple[Fault, ...] = ()
    driver_pid: int | None = None
    """The process ``kill-driver`` kills: the one that parsed the plan."""

    def __bool__(self) -> bool:
        return bool(self.faults)

    def describe(self) -> str:
        """The plan as ``AIGENTFLOW_FAULTS`` writes it (what tells one crash test's actors from another's)."""
        return ",".join((f"{f.action}@" if f.action else "") + f.point + (f":{f.arg}" if f.arg else "")
                        for f in self.faults)


_ARMED: dict[str, dict[str | None, tuple[Fault, int | None]]] = {}
"""What ``install`` activated: point or switch name -> its argument (None: any) -> (fault, the driver's pid)."""


def point(name: str, arg: object = None, *, before: Callable[[], None] | None = None) -> None:
    """A fault point: fires the fault a test installed here (for ``arg``, when the point takes one).

    ``before`` runs just before a kill (e.g. flush what the process holds); not at all otherwise."""
    armed = _ARMED.get(name)
    if armed is None:
        return
    fault = armed.get(None if arg is None else str(arg))
    if fault is not None:
        _fire(*fault, before)


def enabled(name: str) -> bool:
    """Whether a test turned on the switch ``name``."""
    return name in _ARMED


def install(plan: FaultPlan | None) -> None:
    """Activate ``plan`` in this process, replacing any earlier one (None or an empty plan: all off)."""
    armed: dict[str, dict[str | None, tuple[Fault, int | None]]] = {}
    for fault in plan.faults if plan else ():
        armed.setdefault(fault.point, {})[fault.arg] = (fault, plan.driver_pid)
    _ARMED.clear()
    _ARMED.update(armed)


def from_environment() -> FaultPlan:
    """The plan ``AIGENTFLOW_FAULTS`` asks for (empty when unset), with this process as the driver."""
    return parse(os.environ.get(ENV, ""), driver_pid=os.getpid())


@lru_cache(maxsize=8)
def parse(text: str, driver_pid: int | None = None) -> FaultPlan:
    """Parse the ``AIGENTFLOW_FAULTS`` syntax (see the module docstring); a ``UsageError`` if malformed."""
    faults = tuple(_parse_entry(entry.strip()) for entry in text.split(",") if entry.strip())
    return FaultPlan(faults, driver_pid if faults else None)


def _parse_entry(entry: str) -> Fault:
    if "@" not in entry:
        if entry in SWITCHES:
            return Fault(entry)
        if entry in POINTS:
            _refuse(entry, f"{entry} is a point: say what happens there, e.g. kill-self@{entry}")
        _refuse(entry, f"unknown switch {entry!r}")
    action, _, target = entry.partition("@")
    if action not in ACTIONS:
        _refuse(entry, f"unknown action {action!r}")
    name, colon, arg = target.partition(":")
    if name not in POINTS:
        _refuse(entry, f"unknown point {name!r}" + (" (a switch takes no action)" if name in SWITCHES else ""))
    wants = POINTS[name][0]
    if wants is None and colon:
        _refuse(entry, f"{name} takes no argument")
    if wants is not None and not arg:
        _refuse(entry, f"{name} needs its argument: {action}@{name}:{wants}")
    if wants == "N" and not (arg.isdigit() and int(arg) >= 1):
        _refuse(entry, f"{name}:{wants} needs a whole number from 1, not {arg!r}")
    return Fault(name, action, str(int(arg)) if wants == "N" else arg or None)


def _refuse(entry: str, why: str) -> NoReturn:
    points = ", ".join(f"{n}:{a}" if a else n for n, (a, _) in POINTS.items())
    raise UsageError(f"{ENV}: {entry!r}: {why}. Entries are ACTION@POINT[:ARG] (actions: {', '.join(ACTIONS)}; "
                     f"points: {points}) or a switch ({', '.join(SWITCHES)}), separated by commas.")


def _fire(fault: Fault, driver_pid: int | None, before: Callable[[], None] | None) -> None:
    pid = {"kill-self": os.getpid(), "kill-driver": driver_pid}.get(fault.action or "")
    if pid is None:  # a switch, or no driver to kill
        return
    if before is not None:
        before()
    os.kill(pid, signal.SIGKILL)
    if fault.action == "kill-driver":
        # The engine lives on in the node's run host: it stops here as if its process had died with the
        # driver, writing nothing more (the run stays where the store says; `aigentflow resume` continues it).
        from aigentflow.exceptions import RunAbandoned

        raise RunAbandoned(f"crash test: the driver was killed at {fault.point}"
                           + (f":{fault.arg}" if fault.arg else ""))
    time.sleep(60)  # this process is gone, or about to be
