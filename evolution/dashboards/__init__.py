"""The rollout plan's health dashboards (MVP, v1.0, v2.0, Enterprise): plain functions computing each figure
from the run store and the traces, judged against the plan's thresholds. ``aigentflow dashboards`` prints them;
``aigentflow ui`` shows them.

Nothing is imported here at import time: `aigentflow --help` imports ``evolution.dashboards.cli`` (and so
this package) to list the command, and must stay fast.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aigentflow.project.paths import ProjectPaths
    from evolution.dashboards.data import ProjectData
    from evolution.dashboards.figure import Figure

PHASES = ("MVP", "v1.0", "v2.0", "Enterprise")


def load(paths: ProjectPaths, now: datetime | None = None) -> ProjectData:
    """A snapshot of the project's store and traces (see ``data.load``)."""
    from evolution.dashboards.data import load as load_data

    return load_data(paths, now)


def compute(data: ProjectData, latency_ms: list[float] | None = None) -> dict[str, list[Figure]]:
    """Every figure, by phase; ``latency_ms``: timed CLI commands (``latency.measure``), or None for "no data"."""
    from evolution.dashboards import enterprise, mvp, v1, v2

    return {"MVP": mvp.figures(data, latency_ms), "v1.0": v1.figures(data), "v2.0": v2.figures(data),
            "Enterprise": enterprise.figures(data)}
