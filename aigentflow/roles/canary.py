"""Canary routing of role versions, read from plain data: ``.aigentflow/canary/<role>.json``.

Written by the self-evolution loop (``aigentflow canary``, in ``evolution/``; aigentflow never imports
it): ``{"role", "incumbent", "candidate", "percent", "status"}``. While a canary is ``active``, a new run
whose version of the role would be the incumbent gets the candidate instead when its run id's sticky
bucket (``bucket``: 0-99 from a hash of the id) is below ``percent``: raising the percentage only adds
runs to the candidate, never moves one back. Nothing applies while ``.aigentflow/evolution/disabled.json``
exists (the self-evolution kill switch). The pick is recorded in the run's settings, so a resume keeps it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CANARY_DIR = "canary"
DISABLED_FILE = Path("evolution") / "disabled.json"


def bucket(run_id: str) -> int:
    """The run's sticky bucket, 0-99."""
    return int(hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:8], 16) % 100


def active_canaries(state_dir: Path) -> list[dict[str, Any]]:
    """The active canaries (unreadable files are skipped: routing falls back to the incumbent)."""
    if (state_dir / DISABLED_FILE).exists():
        return []
    found = []
    for path in sorted((state_dir / CANARY_DIR).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("status") == "active" and data.get("candidate"):
            found.append(data)
    return found


def canary_picks(state_dir: Path, run_id: str, versions: Mapping[str, Mapping[str, Any]],
                 known: Mapping[str, set[str]]) -> dict[str, str]:
    """role -> candidate version for the active canaries this run falls in. ``versions``: the run's
    {role: {"version": v}}; ``known``: each role's registered versions (a candidate not among them is
    ignored)."""
    picks = {}
    for canary in active_canaries(state_dir):
        role = str(canary.get("role"))
        current = (versions.get(role) or {}).get("version")
        candidate = str(canary["candidate"])
        if current == canary.get("incumbent") and candidate in known.get(role, set()) \
                and bucket(run_id) < float(canary.get("percent", 0)):
            picks[role] = candidate
    return picks
