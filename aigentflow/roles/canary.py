"""Canary routing of role versions, read from plain data: ``.aigentflow/canary/<role>.json``.

Written by the self-evolution loop (``aigentflow canary``, in ``evolution/``; aigentflow never imports
it): ``{"role", "incumbent", "candidate", "percent", "status"}``. While a canary is ``active``, a new run
whose version of the role would be the incumbent gets the candidate instead when its run id's sticky
bucket (``bucket``: 0-99 from a hash of the id) is below ``percent``: raising the percentage only adds
runs to the candidate, never moves one back. Nothing applies while ``.aigentflow/evolution/disabled.json``
exists (the self-evolution kill switch). The pick is recorded in the run's settings, so a resume keeps it.

Shadow stage: a rollout file whose ``stage`` is ``shadow`` (its ``percent`` 0: no run is routed to the
candidate) makes the candidate play, beside the incumbent, every step the role serves in a run whose
version of the role is the incumbent (``aigentflow.run.shadow``): its output graded and discarded, a
record appended to ``.aigentflow/shadow/<role>.jsonl``. The kill switch stops shadows at the next step.

Watchers: a rollout file may name a Python function (``watch``: ``module:function``, written by the
evolution loop), called as ``function(project_root, event)`` with the ``run.finished`` / ``run.failed``
event of every run that finishes while the rollout is active: the stage's checks run after each run,
without a human command (on the run's hook worker: a watcher that fails is audited, never breaks the run).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CANARY_DIR = "canary"
DISABLED_FILE = Path("evolution") / "disabled.json"
SHADOW_STAGE = "shadow"
SHADOW_DIR = "shadow"
WATCH = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*")


def bucket(run_id: str) -> int:
    """The run's sticky bucket, 0-99."""
    return int(hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:8], 16) % 100


def evolution_off(state_dir: Path) -> bool:
    """The self-evolution kill switch is on: no canary routes a run, no shadow plays."""
    return (Path(state_dir) / DISABLED_FILE).exists()


def active_canaries(state_dir: Path) -> list[dict[str, Any]]:
    """The active rollouts, canaries and shadows (unreadable files are skipped: routing falls back to the
    incumbent)."""
    if evolution_off(state_dir):
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


def active_shadows(state_dir: Path) -> dict[str, dict[str, Any]]:
    """role -> its rollout in the shadow stage (none while the kill switch is on)."""
    return {str(c.get("role")): c for c in active_canaries(state_dir) if c.get("stage") == SHADOW_STAGE}


def watchers(state_dir: Path) -> list[str]:
    """The watch functions (``module:function``) the active rollouts name, each once."""
    named = {str(c.get("watch")) for c in active_canaries(state_dir) if c.get("watch")}
    return sorted(w for w in named if WATCH.fullmatch(w))


def shadow_file(state_dir: Path, role: str) -> Path:
    return Path(state_dir) / SHADOW_DIR / f"{role}.jsonl"


def record_shadow(state_dir: Path, role: str, record: Mapping[str, Any]) -> None:
    """Append one shadow record (one line, one write: concurrent runs do not interleave)."""
    path = shadow_file(state_dir, role)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(dict(record), sort_keys=True, default=str) + "\n")
