"""The run store: projects, runs, the transition log, steps, artifacts, audit and controls.

``protocol.py`` holds the ``RunStore`` interface and its contract, ``records.py`` the typed records,
``migrations.py`` the versioned schema, ``sqlite.py`` the SQLite implementation and ``memory.py`` its
in-memory twin (for tests). ``open_store`` is the way in for commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from aigentflow.store.sqlite import SQLiteRunStore, StaleRun

if TYPE_CHECKING:
    from aigentflow.store.memory import InMemoryRunStore
    from aigentflow.store.protocol import RunStore

__all__ = ["InMemoryRunStore", "RunStore", "SQLiteRunStore", "StaleRun", "open_store"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: every `aigentflow status` imports this package, and neither needs them.
    if name == "RunStore":
        from aigentflow.store.protocol import RunStore

        return RunStore
    if name == "InMemoryRunStore":
        from aigentflow.store.memory import InMemoryRunStore

        return InMemoryRunStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(path: Path, *, readonly: bool = False) -> SQLiteRunStore:
    return SQLiteRunStore(path, readonly=readonly)
