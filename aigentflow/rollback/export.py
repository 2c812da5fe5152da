"""What every phase rollback shares: its export file, the switches and flags it changes, and their undo.

An export is ``.aigentflow/exports/rollback-<phase>-<time>.json``: ``{"phase", "exported_at", "switches_on",
"flags", ...}`` plus what the phase removes or disables. ``switches_on`` lists the emergency switches the
rollback turned on (they were off); ``flags`` each flag it turned off, with its table in the project's flags
file and its value in the project's config as they were. The undo marks the export ``undone_at``, so
``--undo`` without a file takes the latest export of the phase not undone yet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UsageError
from aigentflow.models.cassette import write_json_atomic
from aigentflow.store.rows import now_iso

EXPORTS = "exports"


def exports_dir(paths: Any) -> Path:
    return Path(paths.state_dir) / EXPORTS


def new_export(paths: Any, phase: str, suffix: str = ".json") -> Path:
    """A fresh ``rollback-<phase>-<time><suffix>`` under the exports directory (never an existing one)."""
    stamp = now_iso().replace(":", "").replace("-", "").replace(".", "")[:18]
    base = exports_dir(paths) / f"rollback-{phase}-{stamp}"
    candidate, number = Path(f"{base}{suffix}"), 2
    while candidate.exists():
        candidate, number = Path(f"{base}-{number}{suffix}"), number + 1
    return candidate


def write(path: Path, data: dict[str, Any]) -> None:
    write_json_atomic(path, data)


def read(path: Path, phase: str) -> dict[str, Any]:
    """The export at ``path``; a UsageError if it is missing, unreadable or another phase's."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path} does not exist; give an export of `aigentflow admin rollback {phase}` "
                         f"(they are in .aigentflow/{EXPORTS}/). Nothing changed.") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} is not a rollback export ({exc}). Nothing changed.") from None
    if not isinstance(data, dict) or data.get("phase") != phase:
        found = data.get("phase") if isinstance(data, dict) else None
        raise UsageError(f"{path} is the export of a {found or 'unknown'} rollback, not of {phase}; undo it with "
                         f"`aigentflow admin rollback {found} --undo --export {path}`. Nothing changed.")
    return data


def latest(paths: Any, phase: str) -> Path:
    """The newest export of ``phase`` not undone yet; a UsageError saying so when there is none."""
    found = []
    for path in sorted(exports_dir(paths).glob(f"rollback-{phase}-*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("phase") == phase and not data.get("undone_at"):
            found.append((str(data.get("exported_at", "")), path))
    if not found:
        raise UsageError(f"no rollback of {phase} to undo: no export in {exports_dir(paths)} that is not undone "
                         f"already (`aigentflow admin rollback {phase}` writes one). Nothing changed.")
    return max(found)[1]


def audit(paths: Any, event: str, done: dict[str, Any]) -> None:
    """Record what a rollback (``admin.rollback``) or its undo (``admin.rollback.undone``) did."""
    from aigentflow.store.sqlite import SQLiteRunStore

    with SQLiteRunStore(paths.database) as store:
        store.append_audit(event, None, done)


def mark_undone(path: Path, data: dict[str, Any]) -> None:
    write_json_atomic(path, {**data, "undone_at": now_iso()})


# -- switches -------------------------------------------------------------------------------------------------


def switch_on(paths: Any, store: Any, key: str, reason: str) -> bool:
    """Turn emergency switch ``key`` on (audited as ``admin.emergency``); whether it was off (the rollback
    changed it, so its undo lifts it)."""
    from aigentflow import emergency

    if emergency.read(store, paths.state_dir)[key]:
        return False
    _set_switch(paths, store, key, True, reason)
    return True


def switches_off(paths: Any, store: Any, keys: list[str], reason: str) -> list[str]:
    """Lift the switches ``keys`` that are still on (what an undo does with ``switches_on``)."""
    from aigentflow import emergency

    state = emergency.read(store, paths.state_dir)
    lifted = [key for key in keys if state.get(key)]
    for key in lifted:
        _set_switch(paths, store, key, False, reason)
    return lifted


def _set_switch(paths: Any, store: Any, key: str, on: bool, reason: str) -> None:
    from aigentflow import emergency

    if key == "disable_evolution":
        from aigentflow.roles.evolution_switch import set_evolution_disabled

        set_evolution_disabled(Path(paths.state_dir), on, reason if on else "")
    elif key == "single_tenant_mode":
        from aigentflow.tenants.mode import set_single_tenant_mode

        set_single_tenant_mode(store, on, reason)
    else:
        control = {"pause_all": emergency.PAUSE_ALL, "disable_generated_agents": emergency.DISABLE_GENERATED}[key]
        store.set_control(control, on)
        store.append_audit("admin.emergency", None, {key: on, "reason": reason})


# -- flags ----------------------------------------------------------------------------------------------------


def flags_to_turn_off(paths: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """The flags of ``keys`` that are on, or could be (a rule, split or rollout in the project's flags file),
    with what the rollback will change as it is now: key -> {"table": its flags-file table or None,
    "config": its value in the project's config or None}. Changes nothing: this is what the export keeps."""
    from aigentflow.config.loader import load_config
    from aigentflow.flags.definitions import read_file
    from aigentflow.flags.load import project_flags_file

    root = Path(paths.root)
    config = load_config(root)
    tables = read_file(project_flags_file(root))
    project_source = f"project file {paths.config_file}"
    found: dict[str, Any] = {}
    for key in keys:
        table = tables.get(key)
        dynamic = bool(table and set(table) & {"rules", "split", "rollout"})
        in_config = config.sources.get(f"flags.{key}") == project_source
        if table == {"default": False} and not in_config:
            continue  # turned off here already (a layer outside the project may still turn it on)
        if config.flags.get(key) is True or dynamic or in_config:
            found[key] = {"table": table, "config": config.flags[key] if in_config else None}
    return found


def flags_off(paths: Any, changing: dict[str, Any], keys: tuple[str, ...], reason: str) -> dict[str, str]:
    """Turn off the flags ``flags_to_turn_off`` found, through the flags layer: each one's table in the project's
    flags file becomes ``default = false`` (rules, splits and rollouts that could turn it on go), each change
    audited (``flag.changed``); a ``flags.KEY`` in the project's config, which outranks the file, is removed.
    Returns what is still on because a layer outside the project sets it: key -> that layer."""
    from aigentflow.config.loader import load_config, unset_value
    from aigentflow.flags.edit import FlagEditor

    for key, was in changing.items():
        if was["config"] is not None:
            unset_value(Path(paths.config_file), f"flags.{key}")
    editor = FlagEditor(Path(paths.root))
    for key, was in changing.items():
        if (was["table"] or {}) != {"default": False}:
            editor.set_table(key, {"default": False}, f"rollback ({reason})")
    after = load_config(Path(paths.root))
    return {key: after.sources.get(f"flags.{key}", "") for key in keys if after.flags.get(key) is True}


def flags_restore(paths: Any, changed: dict[str, Any], reason: str) -> list[str]:
    """Put back each flag ``flags_off`` changed: its table (audited) and its project config value."""
    from aigentflow.config.loader import set_value
    from aigentflow.flags.edit import FlagEditor

    editor = FlagEditor(Path(paths.root))
    restored = []
    for key, was in changed.items():
        if editor.tables.get(key) != was["table"]:
            editor.set_table(key, was["table"], f"undo rollback ({reason})")
        if was.get("config") is not None:
            value = was["config"]
            set_value(Path(paths.config_file), f"flags.{key}", str(value).lower() if isinstance(value, bool)
                      else str(value))
        restored.append(key)
    return restored


def flag_lines(changed: dict[str, Any], left: dict[str, str]) -> list[str]:
    """What ``flags_off`` did, for people."""
    lines = []
    if changed:
        lines.append(f"turned {len(changed)} flag(s) off: {', '.join(sorted(changed))}")
    for key, source in sorted(left.items()):
        lines.append(f"{key}: still on, set by {source or 'a layer outside the project'}; turn it off there "
                     f"(`aigentflow config get flags.{key}`)")
    return lines
