"""Fault injection for crash tests: one hook, off unless a test turns it on.

Production code marks the few places where a crash test needs a fault, and nothing else about tests:

- ``plan.point("transition:3", before=flush)``: the engine, after its third transition; ``"step:plan"``:
  before it commits the ``plan`` step;
- ``point("merge.before-sync")`` / ``point("merge.after-sync")``: a branch move, around moving the
  checked-out worktree (``gitops.merge``);
- ``enabled("force-remote-build")``: build tasks act as if their node lacked the repository (the git
  bundle path of a cluster).

A test turns faults on with ONE environment variable of the driver (or of any process it starts),
``AIGENTFLOW_FAULTS``: a comma-separated list of

- ``kill-driver@<point>``: SIGKILL the run's driver when the engine reaches ``<point>`` (``transition:N``
  or ``step:NAME``); the engine then stops as if its own process had died, writing nothing more;
- ``kill-self@<point>``: SIGKILL the process that reaches ``<point>`` (``merge.before-sync``, ...);
- ``force-remote-build``.

The driver parses it once (``from_environment``; a malformed value is a UsageError, exit 2) and the plan
travels in the data actors already get (``EngineOptions.faults``, the Git Agent's constructor), so that it
works on a cluster whose workers never saw the driver's environment. With no plan every hook is a no-op:
one attribute test, no environment read per call.
"""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aigentflow.exceptions import UsageError

ENV = "AIGENTFLOW_FAULTS"
ACTIONS = ("kill-driver", "kill-self")
FLAGS = ("force-remote-build",)
_POINT = re.compile(r"(transition:\d+|step:[\w./-]+|[a-z]+\.[a-z-]+)")


class FaultInjected(BaseException):
    """Raised where a killed process would have stopped (the engine after killing its driver)."""


@dataclass(frozen=True)
class Fault:
    action: str
    point: str = ""


@dataclass(frozen=True)
class FaultPlan:
    """The faults one test asked for; ``OFF`` (no faults) everywhere else."""

    faults: tuple[Fault, ...] = ()
    driver_pid: int | None = None

    def __bool__(self) -> bool:
        return bool(self.faults)

    def enabled(self, flag: str) -> bool:
        return any(f.action == flag for f in self.faults)

    def kills_self_at(self) -> tuple[str, ...]:
        return tuple(f.point for f in self.faults if f.action == "kill-self")

    def point(self, where: str, *, before: Callable[[], None] | None = None) -> None:
        """The fault planned at ``where``, if any: kill the driver (then raise ``FaultInjected``) or this process."""
        if not self.faults:
            return
        for fault in self.faults:
            if fault.point != where:
                continue
            if before is not None:
                before()
            if fault.action == "kill-driver" and self.driver_pid:
                os.kill(self.driver_pid, signal.SIGKILL)
                raise FaultInjected(f"crash test: the driver was killed at {where}")
            if fault.action == "kill-self":
                os.kill(os.getpid(), signal.SIGKILL)
                time.sleep(10)  # the signal is delivered at once; never go on past the point

    def describe(self) -> str:
        return ",".join(f"{f.action}@{f.point}" if f.point else f.action for f in self.faults)


OFF = FaultPlan()


def parse(text: str, *, driver_pid: int | None = None) -> FaultPlan:
    """``AIGENTFLOW_FAULTS``'s value as a plan; anything it does not understand is refused, naming it."""
    faults = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        action, _, where = item.partition("@")
        if action in FLAGS and not where:
            faults.append(Fault(action))
        elif action in ACTIONS and _POINT.fullmatch(where):
            faults.append(Fault(action, where))
        else:
            raise UsageError(
                f"{ENV} has {item!r}, which is not a fault: write kill-driver@transition:N, kill-driver@step:NAME, "
                f"kill-self@<point> (merge.before-sync, merge.after-sync) or force-remote-build, comma-separated "
                f"(crash tests only; unset {ENV} otherwise)")
    return FaultPlan(tuple(faults), driver_pid)


def from_environment(env: Mapping[str, str] | None = None) -> FaultPlan:
    """The plan this process's environment asks for (the driver's; its pid is the one ``kill-driver`` kills)."""
    text = (os.environ if env is None else env).get(ENV, "")
    return parse(text, driver_pid=os.getpid()) if text.strip() else OFF


_process: dict[str, FaultPlan] = {}
"""This process's plan, under "plan" once installed or read."""


def install(plan: FaultPlan | None) -> None:
    """Make ``plan`` this process's (an actor given the driver's plan, e.g. the Git Agent)."""
    _process["plan"] = plan or OFF


def current() -> FaultPlan:
    """This process's plan: the installed one, else its own environment's (read once)."""
    if "plan" not in _process:
        _process["plan"] = from_environment()
    return _process["plan"]


def point(where: str) -> None:
    """A point where this process may be told to die (``kill-self@<where>``)."""
    plan = current()
    if plan:
        plan.point(where)


def enabled(flag: str) -> bool:
    return current().enabled(flag)
