"""The pattern miner's stored findings, as plain dicts, when the miner is part of this build.

The miner (``evolution.patterns``) is written elsewhere; its store is read only through
``evolution.patterns.store.read_findings(project_root)``. Until it exists, ``load_findings``
returns None and the dashboards say "no data" for it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


def load_findings(project_root: Path) -> list[dict[str, Any]] | None:
    """Every stored finding as a dict; None when the pattern miner is not installed."""
    try:
        from evolution.patterns.store import read_findings  # type: ignore[import-not-found]
    except ImportError:
        return None
    return [as_dict(finding) for finding in read_findings(project_root)]


def as_dict(finding: Any) -> dict[str, Any]:
    """A finding record (a dict, a dataclass, a pydantic model or a named tuple) as a dict."""
    if isinstance(finding, dict):
        return dict(finding)
    if dataclasses.is_dataclass(finding) and not isinstance(finding, type):
        return dataclasses.asdict(finding)
    if hasattr(finding, "model_dump"):
        return dict(finding.model_dump())
    if hasattr(finding, "_asdict"):
        return dict(finding._asdict())
    return dict(vars(finding))
