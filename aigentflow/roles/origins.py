"""Which of a run's recorded role versions are generated ones, read from their spec files with the
standard library only (``aigentflow status`` must start fast: no pydantic, no registry)."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path


def generated_versions(agents_dir: Path, versions: Mapping[str, str | None]) -> dict[str, dict[str, str]]:
    """``{role: {"version": v, "approval": a}}`` for each ``role: v`` whose spec file
    (``agents_dir/<role>/<v>.toml|json``) says ``origin = "generated"``; built-in versions have no file."""
    found: dict[str, dict[str, str]] = {}
    for role, version in versions.items():
        if not version:
            continue
        for suffix, parse in ((".toml", tomllib.loads), (".json", json.loads)):
            path = agents_dir / role / f"{version}{suffix}"
            try:
                data = parse(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("origin") == "generated":
                found[role] = {"version": version, "approval": str(data.get("approval") or "")}
            break
    return found
