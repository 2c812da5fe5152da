"""The leaderboard page's data: per role, each rated version's TrueSkill rating (mu, sigma, mu - 3 sigma, the
95% interval), its record, its promotion status, and the role's rollout stage (shadow, canary %, done,
rolled back), read from ``.aigentflow/evolution.db`` and the rollout files (read-only)."""

from __future__ import annotations

from typing import Any

from aigentflow.project.paths import ProjectPaths


def stage_text(rollout: dict[str, Any] | None) -> str:
    """What the page says of a role's rollout."""
    if not rollout:
        return "no rollout"
    candidate = rollout["candidate"]
    if rollout["status"] == "rolled_back":
        return f"{candidate} rolled back ({rollout.get('rollback_reason', '')})"
    if rollout["status"] == "completed":
        return f"{candidate} rolled out to 100% of runs"
    if rollout.get("stage") == "shadow":
        return f"{candidate} in shadow mode beside {rollout['incumbent']}"
    return f"{candidate} canary at {rollout['percent']}% of runs (incumbent {rollout['incumbent']})"


def roles(paths: ProjectPaths) -> list[dict[str, Any]]:
    """One entry per role with ratings: its rows (best conservative rating first) and its rollout."""
    from evolution.db import database_path
    from evolution.rollout.canary import read_canary
    from evolution.tournament.store import ratings

    if not database_path(paths.root).exists():
        return []
    rows = ratings(paths.root)
    decided = _promotions(database_path(paths.root))
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = out.setdefault(row["role"], {"role": row["role"], "versions": []})
        entry["versions"].append({**row, "promotion": decided.get((row["role"], row["version"]), "-")})
    for entry in out.values():
        rollout = read_canary(paths, entry["role"])
        entry["rollout"] = rollout
        entry["stage"] = stage_text(rollout)
        entry["stage_class"] = "none" if not rollout else rollout["status"] if rollout["status"] != "active" \
            else rollout.get("stage", "canary")
        entry["versions"].sort(key=lambda r: -r["conservative"])
        for row in entry["versions"]:
            row["in_rollout"] = bool(rollout) and row["version"] == rollout["candidate"]
    return sorted(out.values(), key=lambda e: e["role"])


def _promotions(database: Any) -> dict[tuple[str, str], str]:
    """(role, version) -> its promotion's status, read-only (no table yet: none)."""
    import sqlite3

    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return {(r, v): s for r, v, s in db.execute("SELECT role, version, status FROM promotions")}
    except sqlite3.OperationalError:
        return {}
    finally:
        db.close()
