"""Searching a project for a subject: every database and file under ``.aigentflow/``, git's text metadata,
and the repository's objects (``git.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigentflow.gdpr import databases, files, git
from aigentflow.gdpr.hits import LOCATIONS, Hit, Unit, location_of
from aigentflow.gdpr.subject import Subject
from aigentflow.project.paths import ProjectPaths


@dataclass
class Findings:
    units: list[Unit] = field(default_factory=list)
    """What an erase rewrites, each naming the subject."""
    user_history: list[Hit] = field(default_factory=list)
    """Objects of the user's own git history naming the subject: reported, never rewritten."""

    @property
    def hits(self) -> list[Hit]:
        return [hit for unit in self.units for hit in unit.hits]

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(LOCATIONS, 0)
        for hit in self.hits:
            counts[hit.location] += 1
        return counts

    def to_dict(self, with_records: bool = False) -> dict[str, Any]:
        return {"counts": self.counts(), "hits": [h.to_dict(with_records) for h in self.hits],
                "user_history": [h.to_dict(with_records) for h in self.user_history]}


def search_unit(paths: ProjectPaths, kind: str, relative: str, subject: Subject) -> Unit:
    """Search one unit again (an erase re-reads each unit before and after it rewrites it)."""
    if kind == "git-branch":
        units, _ = git.search_git(paths.root, subject)
        return next((u for u in units if u.path == relative), Unit(kind, relative, "git"))
    path = paths.root / relative
    location = location_of(relative)
    if not path.exists():
        return Unit(kind, relative, location)
    searcher = {"sqlite": databases.search_sqlite, "duckdb": databases.search_duckdb,
                "parquet": databases.search_parquet}.get(kind, files.search_file)
    return searcher(path, relative, location, subject)


def search(paths: ProjectPaths, subject: Subject) -> Findings:
    findings = Findings()
    for path in files.candidate_files(paths.root, paths.state_dir):
        relative = path.relative_to(paths.root).as_posix()
        unit = search_unit(paths, databases.file_kind(path), relative, subject)
        if unit.hits:
            findings.units.append(unit)
    units, user = git.search_git(paths.root, subject)
    findings.units += units
    findings.user_history = user
    return findings


def byte_residue(root: Path, subject: Subject) -> list[str]:
    """Files under ``root`` whose raw bytes name the subject (what a `grep -ri` of the project finds)."""
    import os

    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            try:
                if subject.byte_pattern.search(path.read_bytes()):
                    found.append(path.relative_to(root).as_posix())
            except OSError:
                continue
    return sorted(found)
