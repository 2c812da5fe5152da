"""The self-evolution kill switch, kept by the core (``aigentflow admin emergency --disable-evolution``).

Persisted as the store control ``emergency.disable_evolution`` (``{"reason", "at"}`` while on, ``false``
when lifted), audited by whoever sets it, and mirrored by ``.aigentflow/evolution/disabled.json``, the file
canary routing (``aigentflow.roles.canary``) reads and that ``aigentflow canary disable-evolution`` has always
written: either command sets and lifts both, so they are one switch. ``evolution/`` reads it through
``evolution.rollout.switches.evolution_disabled``; aigentflow never imports ``evolution``. No Ray or litellm.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aigentflow.emergency import DISABLE_EVOLUTION
from aigentflow.roles.canary import DISABLED_FILE


def _store(state_dir: Path) -> Any:
    from aigentflow.store.sqlite import SQLiteRunStore

    return SQLiteRunStore(state_dir / "state.db")


def control_reason(state_dir: Path) -> str | None:
    """Why the store's control says self-evolution is off, or None (also when there is no store yet)."""
    if not (state_dir / "state.db").exists():
        return None
    store = _store(state_dir)
    try:
        value = store.get_control(DISABLE_EVOLUTION, False)
    finally:
        store.close()
    if not value:
        return None
    value = value if isinstance(value, dict) else {}
    return f"disabled {value.get('at', '')}: {value.get('reason') or 'no reason given'}"


def set_evolution_disabled(state_dir: Path, disabled: bool, reason: str = "", at: str = "") -> bool:
    """Turn the switch on (with ``reason``) or off, in the store and the canary file; audited as
    ``admin.emergency``. Returns whether it was on before."""
    from aigentflow.models.cassette import write_json_atomic
    from aigentflow.store.rows import now_iso

    at = at or now_iso()
    path = state_dir / DISABLED_FILE
    was = path.exists() or control_reason(state_dir) is not None
    state_dir.mkdir(parents=True, exist_ok=True)
    store = _store(state_dir)
    try:
        store.set_control(DISABLE_EVOLUTION, {"reason": reason, "at": at} if disabled else False)
        store.append_audit("admin.emergency", None, {"disable_evolution": disabled, "reason": reason})
    finally:
        store.close()
    if disabled:
        write_json_atomic(path, {"at": at, "reason": reason})
    else:
        path.unlink(missing_ok=True)
    return was


def file_reason(state_dir: Path) -> str | None:
    path = state_dir / DISABLED_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return f"{path} exists (unreadable)"
    data = data if isinstance(data, dict) else {}
    return f"disabled {data.get('at', '')}: {data.get('reason') or 'no reason given'}"


def evolution_off(state_dir: Path) -> str | None:
    """Why self-evolution is off (either record of the switch), or None while it is on."""
    return control_reason(state_dir) or file_reason(state_dir)
