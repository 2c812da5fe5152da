"""``aigentflow admin rollback v2.0`` (first named ``v1``: back to v1.0 behaviour): the rollout plan's Phase 3
(v2.0) rollback, contributed to aigentflow's ``admin rollback`` (``ROLLBACK_PHASES`` in ``cli.py``).

In this order, each step safe to repeat: (1) export the evolution state (tournaments, matches, ratings,
promotions, incidents from ``.aigentflow/evolution.db``, the rollout files and shadow records), the chosen role
versions, the self-evolution flags and the switches as they are, to
``.aigentflow/exports/rollback-v2.0-<time>.json``; (2) turn self-evolution's flags off (``V2_FLAGS_OFF``,
through the flags layer, audited); (3) disable self-evolution (the kill switch: no tournament, shadow or canary
goes on); (4) stop generated agents (the run store's ``DISABLE_GENERATED`` control, what ``admin emergency
--disable-generated-agents`` sets); (5) clear the tournament, canary and shadow state (the incidents stay: they
are the record of what went wrong); (6) restore the built-in role versions (each ``agents.<role>.version`` of
the project's config naming another is removed); (7) audit it (``admin.rollback``). Run again, it finds
nothing to export or clear and says so. ``--undo`` puts back, from the export, the cleared rows and files, the
role versions and flags, and lifts the switches the rollback turned on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aigentflow.models.cassette import write_json_atomic
from aigentflow.rollback import V2_FLAGS_OFF
from aigentflow.rollback import export as exports
from evolution.db import database_path, now_iso

PHASE = "v2.0"
REASON = "admin rollback v2.0"
CLEARED_TABLES = ("tournaments", "matches", "ratings", "promotions")
KEPT_TABLES = ("incidents",)


def _tables(project_root: Path) -> dict[str, list[dict[str, Any]]]:
    import sqlite3

    path = database_path(project_root)
    if not path.exists():
        return {}
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        present = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {t: [dict(r) for r in db.execute(f"SELECT * FROM {t}")] for t in (*CLEARED_TABLES, *KEPT_TABLES)
                if t in present}
    finally:
        db.close()


def _files(state_dir: Path) -> dict[str, str]:
    """The rollout files and shadow records, by path under ``.aigentflow/``."""
    found = sorted([*(state_dir / "canary").glob("*.json"), *(state_dir / "shadow").glob("*.jsonl")])
    return {str(p.relative_to(state_dir)): p.read_text(encoding="utf-8") for p in found}


def _custom_versions(paths: Any) -> dict[str, str]:
    """role -> version for each role whose configured ``agents.<role>.version`` is not its built-in one."""
    from aigentflow.config.loader import load_config
    from aigentflow.roles.registry import builtin_registry

    builtin = builtin_registry()
    chosen = {}
    for role, choice in load_config(paths.root).settings.agents.items():
        version = getattr(choice, "version", None)
        if version and (role not in builtin.roles() or version != builtin.default(role).spec.version):
            chosen[role] = str(version)
    return chosen



def _clear(project_root: Path, tables: list[str]) -> None:
    import sqlite3

    db = sqlite3.connect(database_path(project_root))
    try:
        with db:
            for table in tables:
                db.execute(f"DELETE FROM {table}")
    finally:
        db.close()


def rollback(paths: Any) -> dict[str, Any]:
    """Roll the v2.0 phase back to v1.0 behaviour; what was done, for the CLI to print."""
    from aigentflow.config.loader import unset_value
    from aigentflow.store.sqlite import SQLiteRunStore
    from evolution.rollout.switches import evolution_disabled

    state_dir = Path(paths.state_dir)
    tables, files, versions = _tables(paths.root), _files(state_dir), _custom_versions(paths)
    to_clear = {t: len(rows) for t, rows in tables.items() if t in CLEARED_TABLES and rows}
    flags = exports.flags_to_turn_off(paths, V2_FLAGS_OFF)
    store = SQLiteRunStore(paths.database)
    try:
        from aigentflow import emergency

        before = emergency.read(store, state_dir)
        switching = [k for k in ("disable_evolution", "disable_generated_agents") if not before[k]]
        export = None
        if to_clear or files or versions or flags or switching:  # the export, before anything changes
            export = exports.new_export(paths, PHASE)
            write_json_atomic(export, {"exported_at": now_iso(), "phase": PHASE, "tables": tables, "files": files,
                                       "role_versions": versions, "flags": flags, "switches_on": switching})
        left_on = exports.flags_off(paths, flags, V2_FLAGS_OFF, REASON)
        if evolution_disabled(paths.root) is None:
            exports.switch_on(paths, store, "disable_evolution", REASON)
        exports.switch_on(paths, store, "disable_generated_agents", REASON)
        if to_clear:
            _clear(paths.root, list(to_clear))
        for name in files:
            (state_dir / name).unlink(missing_ok=True)
        for role in versions:
            unset_value(paths.config_file, f"agents.{role}.version")
        left = _custom_versions(paths)  # set outside the project's config (the user's, the environment)
        restored = {r: v for r, v in versions.items() if r not in left}
        done = {"phase": PHASE, "export": str(export) if export else None, "cleared": to_clear,
                "rollout_files_removed": sorted(files), "role_versions_restored": restored,
                "role_versions_left": left, "flags_off": sorted(flags), "flags_left_on": left_on,
                "evolution_disabled": True, "was_disabled": bool(before["disable_evolution"]),
                "generated_agents_disabled": True, "generated_were_disabled": before["disable_generated_agents"],
                "changed": bool(export)}
        store.append_audit("admin.rollback", None, done)
    finally:
        store.close()
    return done


def undo(paths: Any, path: Path) -> dict[str, Any]:
    """Put back what the rollback that wrote the export ``path`` cleared, removed and turned off."""
    import sqlite3

    from aigentflow.config.loader import set_value
    from aigentflow.store.sqlite import SQLiteRunStore

    data = exports.read(path, PHASE)
    state_dir = Path(paths.state_dir)
    rows = 0
    present = _tables(paths.root)
    if any(data.get("tables", {}).get(t) for t in CLEARED_TABLES):
        db = sqlite3.connect(database_path(paths.root))
        try:
            with db:
                for table in CLEARED_TABLES:
                    for row in data["tables"].get(table) or []:
                        if table not in present:
                            continue
                        columns = ", ".join(row)
                        marks = ", ".join("?" for _ in row)
                        rows += db.execute(f"INSERT OR IGNORE INTO {table} ({columns}) VALUES ({marks})",
                                           tuple(row.values())).rowcount
        finally:
            db.close()
    for name, text in (data.get("files") or {}).items():
        target = state_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for role, version in (data.get("role_versions") or {}).items():
        set_value(paths.config_file, f"agents.{role}.version", version)
    flags = exports.flags_restore(paths, data.get("flags") or {}, REASON)
    store = SQLiteRunStore(paths.database)
    try:
        lifted = exports.switches_off(paths, store, list(data.get("switches_on") or []), f"undo {REASON}")
        exports.mark_undone(path, data)
        done = {"phase": PHASE, "undo": True, "export": str(path), "rows_restored": rows,
                "files_restored": sorted(data.get("files") or {}), "role_versions": data.get("role_versions") or {},
                "flags_restored": flags, "switches_lifted": lifted}
        store.append_audit("admin.rollback.undone", None, done)
    finally:
        store.close()
    return done


def describe(done: dict[str, Any]) -> list[str]:
    """What ``admin rollback v2.0`` (and its ``--undo``) prints."""
    if done.get("undo"):
        lines = [f"restored from {done['export']}: {done['rows_restored']} tournament/rating/promotion rows, "
                 f"{len(done['files_restored'])} rollout file(s)"]
        lines += [f"{role}: version {version} again" for role, version in sorted(done["role_versions"].items())]
        if done["flags_restored"]:
            lines.append("flags restored: " + ", ".join(done["flags_restored"]))
        lines += [f"{key.replace('_', '-')} lifted" for key in done["switches_lifted"]]
        return lines
    lines = []
    if done["export"]:
        lines.append(f"exported the evolution state to {done['export']}")
    if not (done["cleared"] or done["rollout_files_removed"] or done["role_versions_restored"]):
        lines.append("no tournament, canary or shadow state to export or clear")
    if done["cleared"]:
        lines.append("cleared " + ", ".join(f"{n} {t}" for t, n in done["cleared"].items()))
    if done["rollout_files_removed"]:
        lines.append(f"removed {len(done['rollout_files_removed'])} rollout file(s): canaries and shadows stopped")
    for role, version in sorted(done["role_versions_restored"].items()):
        lines.append(f"{role}: back to its built-in version (was {version})")
    for role, version in sorted(done["role_versions_left"].items()):
        lines.append(f"{role}: still {version}, chosen outside the project's config (the user config or "
                     f"AIGENTFLOW_AGENTS__...); remove it there (`aigentflow config get agents.{role}.version`)")
    lines += exports.flag_lines(dict.fromkeys(done["flags_off"]), done["flags_left_on"])
    lines.append("self-evolution is disabled" + (" (it already was)" if done["was_disabled"] else "")
                 + "; `aigentflow admin emergency --enable-evolution` lifts it")
    lines.append("generated agents are disabled" + (" (they already were)" if done["generated_were_disabled"] else "")
                 + "; `aigentflow admin emergency --enable-generated-agents` lifts it")
    if not done["changed"]:
        lines.append("already rolled back to v1: nothing changed")
    else:
        lines.append(f"`aigentflow admin rollback {PHASE} --undo` restores it")
    return lines
