"""The self-evolution kill switch, as plain data: ``.aigentflow/evolution/disabled.json`` (who, when,
why). While it exists, tournaments stop at their next match boundary and refuse to start, and canaries
neither advance nor route runs to a candidate (the canary file is what aigentflow's role resolution
reads; disabling evolution removes a candidate's share, see ``canary.py``)."""

from __future__ import annotations

import json
from pathlib import Path

from aigentflow.models.cassette import write_json_atomic
from evolution.tournament.store import now_iso


def switch_file(project_root: Path) -> Path:
    return Path(project_root) / ".aigentflow" / "evolution" / "disabled.json"


def evolution_disabled(project_root: Path) -> str | None:
    """Why self-evolution is off (``--disable-evolution``), or None while it is on."""
    path = switch_file(project_root)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return f"{path} exists (unreadable)"
    return f"disabled {data.get('at', '')}: {data.get('reason') or 'no reason given'}"


def disable_evolution(project_root: Path, reason: str) -> None:
    write_json_atomic(switch_file(project_root), {"at": now_iso(), "reason": reason})


def enable_evolution(project_root: Path) -> bool:
    path = switch_file(project_root)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed
