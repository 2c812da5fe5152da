"""Tournaments, matches and ratings in ``.aigentflow/evolution.db`` (SQLite, WAL; the pattern miner's
``findings`` live beside them).

A match is stored under its key (``<tournament>/<number>``, from the tournament's fixed schedule) in
the same transaction as the two rating updates it causes, so a tournament killed at any point has
every recorded match rated exactly once, and a resumed one skips the keys already recorded. Ratings
are updated only here, one match at a time, in recording order (``seq``)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from evolution import db as evolution_db
from evolution.db import DATABASE, database_path, now_iso  # noqa: F401 - this module's API too
from evolution.tournament.rating import Skill, update

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tournaments (
    id TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    versions_json TEXT NOT NULL,
    tasks_json TEXT NOT NULL,
    planned INTEGER NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE IF NOT EXISTS matches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    tournament_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    role TEXT NOT NULL,
    task_id TEXT NOT NULL,
    version_a TEXT NOT NULL,
    version_b TEXT NOT NULL,
    score_a REAL NOT NULL,
    score_b REAL NOT NULL,
    outcome TEXT NOT NULL,
    details_json TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS matches_by_tournament ON matches(tournament_id, number);
CREATE TABLE IF NOT EXISTS ratings (
    role TEXT NOT NULL,
    version TEXT NOT NULL,
    mu REAL NOT NULL,
    sigma REAL NOT NULL,
    matches INTEGER NOT NULL,
    wins INTEGER NOT NULL,
    losses INTEGER NOT NULL,
    draws INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (role, version)
);
"""


def connect(project_root: Path, *, readonly: bool = False) -> Any:
    return evolution_db.connect(project_root, _SCHEMA, readonly=readonly)


def _has_tables(project_root: Path) -> bool:
    if not database_path(project_root).exists():
        return False
    with connect(project_root, readonly=True) as db:
        return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'ratings'").fetchone() is not None


def create_tournament(project_root: Path, tournament_id: str, role: str, versions: list[str], tasks: list[str],
                      planned: int, model: str) -> None:
    with connect(project_root) as db:
        db.execute("INSERT INTO tournaments VALUES (?, ?, ?, ?, ?, ?, 'running', ?, NULL)",
                   (tournament_id, role, json.dumps(versions), json.dumps(tasks), planned, model, now_iso()))


def unfinished_tournament(project_root: Path, role: str, versions: list[str], planned: int) -> dict[str, Any] | None:
    """The latest tournament of the same role, versions and size that did not finish (to resume)."""
    if not _has_tables(project_root):
        return None
    with connect(project_root, readonly=True) as db:
        row = db.execute("SELECT * FROM tournaments WHERE role = ? AND versions_json = ? AND planned = ? "
                         "AND status = 'running' ORDER BY created_at DESC LIMIT 1",
                         (role, json.dumps(versions), planned)).fetchone()
    return _tournament(row) if row else None


def _tournament(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    data["versions"] = json.loads(data.pop("versions_json"))
    data["tasks"] = json.loads(data.pop("tasks_json"))
    return data


def finish_tournament(project_root: Path, tournament_id: str, status: str = "finished") -> None:
    with connect(project_root) as db:
        db.execute("UPDATE tournaments SET status = ?, finished_at = ? WHERE id = ?",
                   (status, now_iso(), tournament_id))


def tournaments(project_root: Path) -> list[dict[str, Any]]:
    if not _has_tables(project_root):
        return []
    with connect(project_root, readonly=True) as db:
        rows = db.execute("SELECT t.*, (SELECT COUNT(*) FROM matches m WHERE m.tournament_id = t.id) AS recorded "
                          "FROM tournaments t ORDER BY created_at DESC").fetchall()
    return [_tournament(r) for r in rows]


def recorded_keys(project_root: Path, tournament_id: str) -> set[str]:
    if not _has_tables(project_root):
        return set()
    with connect(project_root, readonly=True) as db:
        return {r["key"] for r in db.execute("SELECT key FROM matches WHERE tournament_id = ?", (tournament_id,))}


def _skill(db: sqlite3.Connection, role: str, version: str) -> tuple[Skill, sqlite3.Row | None]:
    row = db.execute("SELECT * FROM ratings WHERE role = ? AND version = ?", (role, version)).fetchone()
    return (Skill(row["mu"], row["sigma"]) if row else Skill()), row


def _put(db: sqlite3.Connection, role: str, version: str, skill: Skill, row: sqlite3.Row | None, won: int,
         lost: int, drew: int) -> None:
    counts = (row["matches"], row["wins"], row["losses"], row["draws"]) if row else (0, 0, 0, 0)
    db.execute("INSERT OR REPLACE INTO ratings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (role, version, skill.mu, skill.sigma, counts[0] + 1, counts[1] + won, counts[2] + lost,
                counts[3] + drew, now_iso()))


def record_match(project_root: Path, match: dict[str, Any]) -> bool:
    """Store a played match and apply its rating update, in one transaction. False (and nothing changed)
    when its key is already recorded."""
    with connect(project_root) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            cursor = db.execute(
                "INSERT OR IGNORE INTO matches (key, tournament_id, number, role, task_id, version_a, version_b, "
                "score_a, score_b, outcome, details_json, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (match["key"], match["tournament_id"], match["number"], match["role"], match["task_id"],
                 match["version_a"], match["version_b"], match["score_a"], match["score_b"], match["outcome"],
                 json.dumps(match.get("details", {}), sort_keys=True), now_iso()))
            if cursor.rowcount == 0:
                db.execute("ROLLBACK")
                return False
            role, outcome = match["role"], match["outcome"]
            a, row_a = _skill(db, role, match["version_a"])
            b, row_b = _skill(db, role, match["version_b"])
            new_a, new_b = update(a, b, outcome)
            _put(db, role, match["version_a"], new_a, row_a, outcome == "a", outcome == "b", outcome == "draw")
            _put(db, role, match["version_b"], new_b, row_b, outcome == "b", outcome == "a", outcome == "draw")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return True


def ratings(project_root: Path, role: str | None = None) -> list[dict[str, Any]]:
    """Every rated version (of ``role``), best conservative rating first."""
    if not _has_tables(project_root):
        return []
    with connect(project_root, readonly=True) as db:
        rows = db.execute("SELECT * FROM ratings" + (" WHERE role = ?" if role else ""),
                          (role,) if role else ()).fetchall()
    out = []
    for row in rows:
        skill = Skill(row["mu"], row["sigma"])
        low, high = skill.interval
        out.append({**dict(row), "conservative": skill.conservative, "ci95": [low, high]})
    return sorted(out, key=lambda r: (r["role"], -r["conservative"]))


def matches(project_root: Path, tournament_id: str) -> list[dict[str, Any]]:
    if not _has_tables(project_root):
        return []
    with connect(project_root, readonly=True) as db:
        rows = db.execute("SELECT * FROM matches WHERE tournament_id = ? ORDER BY seq", (tournament_id,)).fetchall()
    return [{**dict(r), "details": json.loads(r["details_json"])} for r in rows]
