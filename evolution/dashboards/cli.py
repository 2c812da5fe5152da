"""`aigentflow dashboards [--json]`: the health dashboards' figures in the terminal (no Ray, no litellm)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aigentflow.cli.common import print_json, reports_errors


@reports_errors
def dashboards(
    project: Annotated[Path | None, typer.Option("--project", help="The project (default: the working directory).")]
    = None,
    no_latency: Annotated[bool, typer.Option("--no-latency", help="Do not time the CLI (its figure shows no data).")]
    = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The rollout plan's health dashboards (MVP, v1.0, v2.0, Enterprise): each figure, its threshold, ok or
    failing."""
    from evolution.dashboards import compute, load
    from evolution.dashboards.data import project_paths
    from evolution.dashboards.latency import measure

    paths = project_paths(project)
    data = load(paths)
    latency = None if no_latency else measure(paths.root, has_runs=bool(data.runs))
    phases = compute(data, latency)
    if json_out:
        print_json({"project": str(paths.root), "at": data.now.isoformat(timespec="seconds"),
                    "dashboards": {phase: [f.to_dict() for f in figures] for phase, figures in phases.items()}})
        return
    from aigentflow.cli.plain import echo, style, table

    echo(f"Health dashboards of {paths.root} ({len(data.runs)} runs, {data.spans.total} spans)")
    colour = {"ok": None, "failing": "red", "no data": "yellow"}
    for phase, figures in phases.items():
        rows = [[f.title, f.display, f.threshold, f.status.upper() if f.status == "failing" else f.status, f.source]
                for f in figures]
        text = table(["figure", "value", "threshold", "verdict", "from"], rows, title=f"{phase} dashboard",
                     flexible=[4])
        lines = text.split("\n")
        for i, figure in enumerate(figures):  # colour whole rows: the table aligns plain text
            name = colour[figure.status]
            if name:
                lines[3 + i] = style(lines[3 + i], name)
        echo("\n".join(lines))
        echo()
