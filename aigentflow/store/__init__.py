"""The run store: projects, runs, the transition log, steps, artifacts, audit and controls.

``records.py`` holds the typed records, ``migrations.py`` the versioned schema, ``sqlite.py`` the
SQLite implementation. ``open_store`` is the way in for commands.
"""

from __future__ import annotations

from pathlib import Path

from aigentflow.store.sqlite import SQLiteRunStore, StaleRun

__all__ = ["SQLiteRunStore", "StaleRun", "open_store"]


def open_store(path: Path, *, readonly: bool = False) -> SQLiteRunStore:
    return SQLiteRunStore(path, readonly=readonly)
