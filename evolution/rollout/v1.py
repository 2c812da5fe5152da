"""``aigentflow admin rollback v1``: the rollout plan's Phase 3 (v2.0) rollback, back to v1.0 behaviour.

In this order, each step safe to repeat: (1) export the evolution state (tournaments, matches, ratings,
promotions, incidents from ``.aigentflow/evolution.db``, the rollout files and shadow records) to
``.aigentflow/exports/rollback-v1-<time>.json``; (2) disable self-evolution (the kill switch: no tournament,
shadow or canary goes on); (3) stop generated agents (the run store's ``DISABLE_GENERATED`` control, what
``admin emergency --disable-generated-agents`` sets); (4) clear the tournament, canary and shadow state (the
incidents stay: they are the record of what went wrong); (5) restore the built-in role versions (each
``agents.<role>.version`` of the project's config naming another is removed); (6) audit it
(``admin.rollback``). Run again, it finds nothing to export or clear and says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aigentflow.exceptions import UsageError
from aigentflow.models.cassette import write_json_atomic
from evolution.db import database_path, now_iso

PHASES = ("v1",)
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


def rollback(paths: Any, phase: str) -> dict[str, Any]:
    """Roll the project back to ``phase`` (only ``v1``); what was done, for the CLI to print."""
    from aigentflow.config.loader import unset_value
    from aigentflow.run.engine import DISABLE_GENERATED
    from aigentflow.store.sqlite import SQLiteRunStore
    from evolution.rollout.switches import disable_evolution, evolution_disabled

    if phase not in PHASES:
        raise UsageError(f"there is no rollback to {phase!r}: `aigentflow admin rollback v1` is the rollback of the "
                         "v2.0 phase (self-evolution) to v1.0 behaviour. Nothing changed.")
    if not Path(paths.database).exists():
        raise UsageError(f"{paths.root} has no aigentflow project (no {paths.database}); run `aigentflow init`. "
                         "Nothing changed.")
    state_dir = Path(paths.state_dir)
    tables, files, versions = _tables(paths.root), _files(state_dir), _custom_versions(paths)
    to_clear = {t: len(rows) for t, rows in tables.items() if t in CLEARED_TABLES and rows}
    export = None
    if to_clear or files or versions:
        stamp = now_iso().replace(":", "").replace("-", "")[:15]
        export = state_dir / "exports" / f"rollback-v1-{stamp}.json"
        write_json_atomic(export, {"exported_at": now_iso(), "phase": phase, "tables": tables, "files": files,
                                   "role_versions": versions})
    was_disabled = evolution_disabled(paths.root)
    if not was_disabled:
        disable_evolution(paths.root, "admin rollback v1")
    store = SQLiteRunStore(paths.database)
    try:
        generated_was_off = bool(store.get_control(DISABLE_GENERATED, False))
        store.set_control(DISABLE_GENERATED, True)
        if to_clear:
            import sqlite3

            db = sqlite3.connect(database_path(paths.root))
            try:
                with db:
                    for table in to_clear:
                        db.execute(f"DELETE FROM {table}")
            finally:
                db.close()
        for name in files:
            (state_dir / name).unlink(missing_ok=True)
        for role in versions:
            unset_value(paths.config_file, f"agents.{role}.version")
        left = _custom_versions(paths)  # set outside the project's config (the user's, the environment)
        restored = {r: v for r, v in versions.items() if r not in left}
        done = {"phase": phase, "export": str(export) if export else None, "cleared": to_clear,
                "rollout_files_removed": sorted(files), "role_versions_restored": restored,
                "role_versions_left": left,
                "evolution_disabled": True, "was_disabled": bool(was_disabled),
                "generated_agents_disabled": True, "generated_were_disabled": generated_was_off,
                "changed": bool(export) or not was_disabled or not generated_was_off}
        store.append_audit("admin.rollback", None, done)
    finally:
        store.close()
    return done


def describe(done: dict[str, Any]) -> list[str]:
    """What ``admin rollback v1`` prints."""
    lines = []
    if done["export"]:
        lines.append(f"exported the evolution state to {done['export']}")
    else:
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
    lines.append("self-evolution is disabled" + (" (it already was)" if done["was_disabled"] else "")
                 + "; `aigentflow canary enable-evolution` lifts it")
    lines.append("generated agents are disabled" + (" (they already were)" if done["generated_were_disabled"] else "")
                 + "; `aigentflow admin emergency --enable-generated-agents` lifts it")
    if not done["changed"]:
        lines.append("already rolled back to v1: nothing changed")
    return lines
