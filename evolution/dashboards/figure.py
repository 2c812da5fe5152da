"""One dashboard figure: a value measured from the project, the rollout plan's threshold, and a verdict.

A figure whose source does not exist (nothing records it yet) has ``value=None`` and the verdict
``no data``, with ``source`` saying why: a dashboard never shows a made-up value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

OK = "ok"
FAILING = "failing"
NO_DATA = "no data"


@dataclass(frozen=True)
class Threshold:
    """The plan's bound for a figure: ``value <op> target`` passes (``op`` is <, >, == or up)."""

    op: str
    target: float | str
    text: str
    """As the plan writes it: "< 1%", "> 10/week", "100%", "up"."""

    def passes(self, value: float | str) -> bool:
        if self.op == "up":
            return value == "up"
        if not isinstance(value, int | float) or not isinstance(self.target, int | float):
            return False
        if self.op == "<":
            return value < self.target
        if self.op == ">":
            return value > self.target
        return abs(value - self.target) < 1e-9


@dataclass(frozen=True)
class Figure:
    """A dashboard figure; ``display`` is the value as people read it ("0.4%", "1.2 s", "no data")."""

    key: str
    phase: str
    title: str
    value: float | str | None
    display: str
    threshold: str
    status: str
    source: str
    """Where the value comes from (and over what), or why there is no data."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measured(key: str, phase: str, title: str, value: float | str, display: str, threshold: Threshold,
             source: str) -> Figure:
    """A figure with a value, judged against its threshold."""
    status = OK if threshold.passes(value) else FAILING
    return Figure(key, phase, title, value, display, threshold.text, status, source)


def no_data(key: str, phase: str, title: str, threshold: Threshold, why: str) -> Figure:
    """A figure nothing measures yet (or with nothing to measure): no value, and why."""
    return Figure(key, phase, title, None, NO_DATA, threshold.text, NO_DATA, why)


def percent(rate: float) -> str:
    """0.953 -> "95.3%" (one decimal, none when whole)."""
    text = f"{100 * rate:.1f}"
    return (text.removesuffix(".0") if text.endswith(".0") else text) + "%"
