"""Plain files: run outputs, worktree files (tracked and untracked), other state files, git's reflogs and
message files. Searched line by line (text) or as bytes; an erase rewrites the file atomically (a temp
file, then ``os.replace``), keeping its mode."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from aigentflow.gdpr.hits import Hit, Unit
from aigentflow.gdpr.subject import Subject

GIT_SKIPPED = ("objects", "index", "hooks", "packed-refs", "lfs")
"""Under ``.git/``: what is not text git reads back as messages (objects are searched through git)."""

SKIPPED_SUFFIXES = ("-wal", "-shm", "-journal", ".duckdb.wal", ".lock", ".gdpr.tmp")
"""Companions of a database (searched through the database) and lock files."""


def candidate_files(root: Path, state_dir: Path) -> Iterator[Path]:
    """Every file the search reads as a file or a database: all of ``.aigentflow/`` (but the GDPR tooling's
    own key and journals) and git's text metadata (reflogs, message files, of the run worktrees too)."""
    skip = state_dir / "gdpr"
    for directory, subdirs, files in os.walk(state_dir):
        here = Path(directory)
        if here == skip or skip in here.parents:
            subdirs[:] = []
            continue
        subdirs[:] = [d for d in subdirs if d != ".git"]  # a worktree's .git is a file; a nested repo is not ours
        for name in files:
            if not name.endswith(SKIPPED_SUFFIXES):
                yield here / name
    git_dir = root / ".git"
    if git_dir.is_dir():
        for directory, subdirs, files in os.walk(git_dir):
            here = Path(directory)
            subdirs[:] = [d for d in subdirs if not (here == git_dir and d in GIT_SKIPPED)]
            for name in files:
                if name not in ("index", "packed-refs") and not name.endswith((".lock", ".pack", ".idx")):
                    yield here / name


def search_file(path: Path, relative: str, location: str, subject: Subject) -> Unit:
    unit = Unit("file", relative, location)
    try:
        data = path.read_bytes()
    except OSError:
        return unit
    if not subject.byte_pattern.search(data):
        text = data.decode("utf-8", "replace")
        if not subject.search(text):  # non-ASCII case folding, which the byte search does not do
            return unit
    text = data.decode("utf-8", "replace")
    found = False
    for number, line in enumerate(text.splitlines(), start=1):
        if subject.search(line):
            found = True
            unit.hits.append(Hit(location, unit.key, {"path": relative, "line": number}, line))
    if not found:  # binary, or a match across a line break of JSON escapes
        unit.hits.append(Hit(location, unit.key, {"path": relative, "line": None}, None))
    return unit


def erase_file(path: Path, subject: Subject, replacement: str) -> bool:
    """Replace the subject in the file; whether it changed. Text stays text; other bytes are replaced
    as bytes (the file may no longer be valid in its format, but it no longer names the subject)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    try:
        text = data.decode("utf-8")
        new = subject.replace(text, replacement).encode("utf-8")
    except UnicodeDecodeError:
        new = subject.byte_pattern.sub(replacement.encode().replace(b"\\", b"\\\\"), data)
    if new == data:
        return False
    temporary = path.with_name(f".{path.name}.gdpr.tmp")
    temporary.write_bytes(new)
    os.chmod(temporary, path.stat().st_mode & 0o7777)
    os.replace(temporary, path)
    return True
