"""The audit report: controls, states, evidence with hashes, attestations and the score, as one HTML file
(Jinja2, no external resources, prints as it shows)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from aigentflow.compliance.evidence import verify
from aigentflow.compliance.records import attestations, evidence_items
from aigentflow.compliance.status import TARGET, Status
from aigentflow.project.paths import ProjectPaths

TEMPLATES = Path(__file__).with_name("templates")


def render(paths: ProjectPaths, conn: sqlite3.Connection, status: Status) -> str:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    evidence = [(item, verify(paths, item)) for item in evidence_items(conn)]
    return env.get_template("report.html").render(
        project=paths.root.name, root=str(paths.root), status=status, target=TARGET,
        attestations=attestations(conn), evidence=evidence)


def default_output(paths: ProjectPaths, at: str) -> Path:
    return paths.state_dir / "compliance" / f"report-{at[:19].replace(':', '')}.html"
