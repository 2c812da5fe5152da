"""The filesystem a sandboxed command sees, through bubblewrap (``bwrap``).

Everything is read-only (``--ro-bind / /``); the sandbox root (the worktree), the run's scratch
directory (its private HOME and TMPDIR) and the run's cgroup.procs files are the only writable
places. Hidden behind an empty read-only tmpfs: the user's home (``~/.ssh``, ``~/.aws``,
``~/.config``, ``~/.gitconfig``, ``~/.netrc`` ...), ``/tmp``, ``/run/user``, the worktree's parent
directory (sibling projects), the repository's other worktrees and its main working tree (with the
``.aigentflow/`` store). What a command needs from a hidden place comes back read-only: the Python
running the launcher, the directories on PATH, and the repository's git directory. The worktree's
``.git`` (a directory, or the file a linked worktree has) is read-only: commits go through the
Git Agent, never the sandbox.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aigentflow.gitops.layout import git_dirs

HIDDEN_SYSTEM_DIRS = ("/tmp", "/var/tmp", "/run/user")
"""Shared scratch places where other users' and programs' files (sockets, agents, keys) live."""


@dataclass(frozen=True)
class GitLayout:
    """Where a worktree's git data is: its ``.git``, the common git dir, every worktree of the repo."""

    dotgit: Path | None
    common: Path | None
    worktrees: tuple[Path, ...]


def _real(path: str | Path) -> Path | None:
    try:
        return Path(path).resolve(strict=True)
    except (OSError, RuntimeError):
        return None


def git_layout(root: Path) -> GitLayout:
    """Read from the files git keeps (no git process, ``aigentflow.gitops.layout.git_dirs``): ``.git``
    (a dir, or ``gitdir: <path>`` for a linked worktree), its ``commondir`` and ``worktrees/*/gitdir``."""
    dotgit = root / ".git"
    dirs = git_dirs(root)
    if dirs is None:
        return GitLayout(dotgit if dotgit.exists() else None, None, ())
    common = dirs[1]
    worktrees: list[Path] = [common.parent] if common.name == ".git" else []
    for gitdir_file in (common / "worktrees").glob("*/gitdir"):
        with_dotgit = _real(gitdir_file.read_text(errors="replace").strip())
        if with_dotgit is not None:
            worktrees.append(with_dotgit.parent)
    return GitLayout(dotgit, common, tuple(dict.fromkeys(worktrees)))


def _homes() -> list[Path]:
    found = [os.environ.get("HOME", "")]
    with contextlib.suppress(KeyError):
        found.append(pwd.getpwuid(os.getuid()).pw_dir)
    return [path for path in map(_real, filter(None, found)) if path is not None and path != Path("/")]


def _under(path: Path, places: Iterable[Path]) -> bool:
    return any(path.is_relative_to(place) for place in places)


def _outermost(paths: Iterable[Path]) -> list[Path]:
    """``paths`` without those inside another one of them."""
    unique = sorted(set(paths), key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in unique:
        if not _under(path, kept):
            kept.append(path)
    return kept


def hidden_places(root: Path, layout: GitLayout) -> list[Path]:
    """What a command must not see: the user's home, shared scratch dirs, the worktree's parent
    (unless it is a top-level directory such as /srv), and the repository's other working trees."""
    places = [*_homes(), *filter(None, map(_real, HIDDEN_SYSTEM_DIRS))]
    if len(root.parent.parts) > 2:
        places.append(root.parent)
    places += [tree for tree in layout.worktrees if tree != root]
    return [place for place in _outermost(places) if place != root]


MIXED_TOOL_DIRS = {".local": ("lib",), ".cargo": ("../.rustup",)}
"""Directories of the home that hold programs next to private data (``~/.local/share/keyrings``,
``~/.cargo/credentials.toml``): only a PATH entry inside them, and these siblings, are shown."""


def _tool_places(entry: Path, homes: Sequence[Path]) -> list[Path]:
    """What a PATH entry in the home needs: the whole tool directory it is in (``~/.pyenv`` for
    ``~/.pyenv/shims``, ``~/.nvm`` ...), except in the directories of ``MIXED_TOOL_DIRS``."""
    home = next((home for home in homes if entry.is_relative_to(home) and entry != home), None)
    if home is None:
        return [entry]
    top = entry.relative_to(home).parts[0]
    if top in MIXED_TOOL_DIRS:
        return [entry, *((home / top / extra).resolve() for extra in MIXED_TOOL_DIRS[top])]
    return [home / top]


def needed_places(hidden: Sequence[Path], root: Path, path_env: str) -> list[Path]:
    """What must stay readable although it is in a hidden place: the interpreter the launcher runs
    with, its installation, and the programs on PATH (with the tool directories they come from)."""
    real = _program_places(path_env, os.environ.get("HOME", ""), time.monotonic() // PLACES_TTL_S)
    return [path for path in real if _under(path, hidden) and not path.is_relative_to(root)]


PLACES_TTL_S = 30.0
"""How long the program directories of one PATH are reused (every sandboxed command needs them:
dozens of path resolutions each time; a directory created on PATH is seen within this time)."""


@functools.lru_cache(maxsize=16)
def _program_places(path_env: str, home: str, period: float) -> tuple[Path, ...]:
    """The outermost existing directories of the interpreter and of ``path_env``'s programs (``home``
    and ``period``, the TTL's slot, only key the cache)."""
    homes = _homes()
    wanted = [Path(sys.executable).parent, Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)]
    for entry in map(_real, (entry for entry in path_env.split(os.pathsep) if entry)):
        if entry is not None:
            wanted += _tool_places(entry, homes)
    return tuple(_outermost(path for path in map(_real, wanted) if path is not None and path.is_dir()))


def bwrap_argv(
    bwrap: str, root: Path, workdir: Path, writable: Sequence[Path], writable_files: Sequence[str], *,
    network: bool, path_env: str,
) -> list[str]:  # fmt: skip
    """The ``bwrap`` command line (up to ``--``) that runs a command in ``workdir`` with this view;
    ``writable``: directories besides the root that the command may write (its scratch, reports)."""
    layout = git_layout(root)
    hidden = hidden_places(root, layout)
    outside = [place for place in hidden if not place.is_relative_to(root)]
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for place in outside:
        argv += ["--tmpfs", str(place)]
    reveal = needed_places(outside, root, path_env)
    if layout.common is not None and not layout.common.is_relative_to(root) and _under(layout.common, outside):
        reveal.append(layout.common)
    for place in _outermost(reveal):
        argv += ["--ro-bind", str(place), str(place)]
    for place in (root, *writable):
        argv += ["--bind", str(place), str(place)]
    if layout.dotgit is not None:
        argv += ["--ro-bind", str(layout.dotgit), str(layout.dotgit)]
    inside = [place for place in hidden if place.is_relative_to(root)]
    store = root / ".aigentflow"
    if store.is_dir() and not store.is_symlink():
        inside = _outermost([*inside, store])
    for place in inside:
        argv += ["--tmpfs", str(place)]
    for procs in writable_files:
        argv += ["--bind", procs, procs]
    for place in (*outside, *inside):
        argv += ["--remount-ro", str(place)]
    argv += ["--unshare-pid", *(() if network else ("--unshare-net",)), "--die-with-parent",
             "--new-session", "--chdir", str(workdir), "--"]  # fmt: skip
    return argv


def probe_bwrap() -> tuple[str | None, str]:
    """``bwrap``'s path if it can build a confined view on this machine, else None and why not."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None, "bubblewrap (`bwrap`) is not installed"
    argv = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
            "--remount-ro", "/tmp", "--unshare-pid", "--unshare-net", "--die-with-parent", "--new-session",
            "--chdir", "/", "--", "true"]  # fmt: skip
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=10, check=False, cwd="/")  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"`bwrap` cannot be run ({exc})"
    if done.returncode != 0:
        why = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        return None, f"`bwrap` fails here ({why[0]}; user namespaces may be turned off)"
    return bwrap, ""
