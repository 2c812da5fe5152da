"""Where a repository's git data is, read from the files git keeps, without starting git.

``git_dirs`` is the one reading of a top level's ``.git``: the Git runner uses it to find refs and HEAD
without a process (``runner.py``), and the sandbox to know which git directories a command's worktree
needs mounted (``aigentflow.sandbox.filesystem.git_layout``).
"""

from __future__ import annotations

from pathlib import Path


def git_dirs(top: Path) -> tuple[Path, Path] | None:
    """The git directory and the shared one of a repository's top level or linked worktree ``top``, read
    as git reads them: ``.git`` a directory, or a ``gitdir: <path>`` file (a linked worktree); the shared
    directory is the one the git directory's ``commondir`` names, else the git directory itself. None for
    anything else (no ``.git``, a ``gitdir`` that is gone, no ``HEAD`` where the shared one should be),
    which callers leave to git itself."""
    dot_git = Path(top) / ".git"
    try:
        if dot_git.is_dir():
            gitdir = dot_git.resolve()
        else:
            line = dot_git.read_text(encoding="utf-8").strip()
            if not line.startswith("gitdir:"):
                return None
            gitdir = (Path(top) / line.removeprefix("gitdir:").strip()).resolve()
        commondir = gitdir / "commondir"
        common = (gitdir / commondir.read_text(encoding="utf-8").strip()).resolve() if commondir.is_file() \
            else gitdir
    except (OSError, UnicodeDecodeError, RuntimeError):
        return None
    return (gitdir, common) if (common / "HEAD").is_file() and gitdir.is_dir() else None
