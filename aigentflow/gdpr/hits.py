"""What a search finds: ``Hit``s (one record naming the subject, where it is) grouped by ``Unit`` (the
file an erase rewrites as a whole: a SQLite database, a DuckDB database, a trace segment, a text file,
a git branch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

LOCATIONS = ("store", "findings", "traces", "outputs", "worktrees", "git", "state-files")
"""Where hits are counted: the run store, evolution's findings, traces, run outputs, run worktrees,
git (run branches, reflogs), other files under .aigentflow/."""


@dataclass
class Hit:
    location: str
    """One of ``LOCATIONS``."""
    unit: str
    """The unit's key (``Unit.key``)."""
    where: dict[str, Any]
    """Where in the unit: table/rowid/column, span_id/field, line, commit/field."""
    record: Any = None
    """The matching record (a row, a span, a line), for the export."""

    def to_dict(self, with_record: bool = True) -> dict[str, Any]:
        data = asdict(self)
        if not with_record:
            data.pop("record")
        return data


@dataclass
class Unit:
    kind: str
    """sqlite, duckdb, parquet, file, git-branch, git-log."""
    path: str
    """Relative to the project root (for a git branch: the branch name)."""
    location: str
    hits: list[Hit] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.path}"


def location_of(relative: str) -> str:
    """The location a file under the project belongs to."""
    parts = relative.split("/")
    if parts[0] == ".git":
        return "git"
    if parts[0] != ".aigentflow" or len(parts) < 2:
        return "state-files"
    name = parts[1]
    if name.startswith("state.db"):
        return "store"
    if name.startswith("evolution.db"):
        return "findings"
    return {"traces": "traces", "runs": "outputs", "worktrees": "worktrees"}.get(name, "state-files")
