"""The rollout plan's health dashboards (MVP, v1.0, v2.0): plain functions computing each figure from the
run store and the traces, judged against the plan's thresholds. ``aigentflow dashboards`` prints them;
``aigentflow ui`` shows them."""

from __future__ import annotations

from evolution.dashboards.data import ProjectData, load
from evolution.dashboards.figure import FAILING, NO_DATA, OK, Figure

PHASES = ("MVP", "v1.0", "v2.0")

__all__ = ["FAILING", "NO_DATA", "OK", "PHASES", "Figure", "ProjectData", "compute", "load"]


def compute(data: ProjectData, latency_ms: list[float] | None = None) -> dict[str, list[Figure]]:
    """Every figure, by phase; ``latency_ms``: timed CLI commands (``latency.measure``), or None for "no data"."""
    from evolution.dashboards import mvp, v1, v2

    return {"MVP": mvp.figures(data, latency_ms), "v1.0": v1.figures(data), "v2.0": v2.figures(data)}
