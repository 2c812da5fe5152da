"""The one way aigentflow runs git: hardened against hostile repositories, serialised across processes.

Every command runs with hooks pointed at an empty directory, no fsmonitor, no credential helper or
prompt, no pager or editor, GPG signing off, and a fixed identity when the repository has none. Paths
are always passed after ``--`` by callers. Mutations of a repository (refs, worktrees, config) take
``RepoLock``: an ``fcntl`` lock on a file in the repository's common git directory, which holds
across processes (Ray tasks and actors are separate processes; a thread lock would not).
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from aigentflow.exceptions import AigentflowError, UsageError
from aigentflow.gitops.layout import git_dirs

MIN_GIT = (2, 38)
"""``git merge-tree --write-tree`` needs 2.38."""
AUTHOR_NAME = "aigentflow"
AUTHOR_EMAIL = "agents@aigentflow.invalid"
_EMPTY_HOOKS = Path(os.devnull)
HARDENING: tuple[str, ...] = (
    "-c", f"core.hooksPath={_EMPTY_HOOKS}",
    "-c", "core.fsmonitor=false",
    "-c", "credential.helper=",
    "-c", "core.askPass=",
    "-c", "commit.gpgSign=false",
    "-c", "tag.gpgSign=false",
    "-c", "core.pager=cat",
    "-c", "protocol.ext.allow=never",
    "--no-pager",
)
_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "HOME", "USER", "LOGNAME")


class GitError(AigentflowError):
    """A git command failed; the message has the command and git's own words."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str, stdout: str = "") -> None:
        self.args_ = list(args)
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout
        super().__init__(f"`git {' '.join(args)}` failed ({returncode}): {stderr.strip()[:2000]}")


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A scrubbed environment: no credentials, no prompts, no repository redirection from outside."""
    env = {k: os.environ[k] for k in _ENV_KEEP if k in os.environ}
    env.update({
        "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "SSH_ASKPASS": "true", "GIT_EDITOR": "true",
        "GIT_PAGER": "cat", "GIT_CONFIG_NOSYSTEM": "1", "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C",
        "GIT_LITERAL_PATHSPECS": "1",  # a path like ":(top)x" is a file name, never pathspec magic
    })
    env.update(extra or {})
    return env


def git_version() -> tuple[int, int]:
    out = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True).stdout
    parts = out.split()[2].split(".")
    return int(parts[0]), int(parts[1])


def require_git() -> None:
    """Refuse to work with a git too old for conflict prediction, saying what is needed."""
    try:
        version = git_version()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise UsageError(f"git is not installed or does not run ({exc}); install git {MIN_GIT[0]}.{MIN_GIT[1]}+") \
            from None
    if version < MIN_GIT:
        raise UsageError(
            f"git {version[0]}.{version[1]} is too old: aigentflow predicts conflicts with "
            f"`git merge-tree --write-tree`, which needs git {MIN_GIT[0]}.{MIN_GIT[1]} or newer"
        )


_usage_lock = threading.Lock()
_usage = {"seconds": 0.0, "commands": 0}
_uncounted = threading.local()


def git_usage() -> dict[str, float]:
    """The git commands this process ran, and their wall time (what the benchmarks report as git)."""
    with _usage_lock:
        return dict(_usage)


@contextmanager
def uncounted() -> Iterator[None]:
    """The git commands this thread runs in the block are not in ``git_usage`` (a shadow's scratch
    worktree is no part of the run it shadows: ``aigentflow.run.shadow``)."""
    before = getattr(_uncounted, "on", False)
    _uncounted.on = True
    try:
        yield
    finally:
        _uncounted.on = before


class Git:
    """git in one directory (a repository or one of its worktrees)."""

    def __init__(self, cwd: Path | str, *, author: tuple[str, str] | None = None) -> None:
        self.cwd = Path(cwd)
        self.author = author or (AUTHOR_NAME, AUTHOR_EMAIL)
        self._common_dir: Path | None = None

    def run(self, *args: str, check: bool = True, input: bytes | str | None = None,
            env: Mapping[str, str] | None = None, binary: bool = False,
            timeout: float = 300) -> subprocess.CompletedProcess:
        name, email = self.author
        identity = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
                    "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}
        started = time.perf_counter()
        proc = subprocess.run(
            ["git", *HARDENING, *args], cwd=self.cwd, capture_output=True, input=input,
            text=not binary, encoding=None if binary else "utf-8", errors=None if binary else "replace",
            env=git_env({**identity, **(env or {})}), timeout=timeout, check=False,
        )
        if not getattr(_uncounted, "on", False):
            with _usage_lock:
                _usage["seconds"] += time.perf_counter() - started
                _usage["commands"] += 1
        if check and proc.returncode != 0:
            stderr = proc.stderr.decode(errors="replace") if binary else proc.stderr
            stdout = proc.stdout.decode(errors="replace") if binary else proc.stdout
            raise GitError(args, proc.returncode, stderr, stdout)
        return proc

    def out(self, *args: str, **kwargs) -> str:
        return self.run(*args, **kwargs).stdout.strip()

    def rev(self, ref: str) -> str | None:
        """The commit ``ref`` names, or None when there is no such ref. A branch (``refs/heads/...``) and
        ``HEAD`` are read from the ref files, as git reads them, without starting git (a run reads its
        branches dozens of times); anything else, or what those files do not settle, is asked of git."""
        found = _branch_from_files(self.common_dir(), ref) if ref.startswith("refs/heads/") else \
            _head_from_files(self.cwd) if ref == "HEAD" else _ASK_GIT
        if found is not _ASK_GIT:
            return found  # type: ignore[return-value]
        proc = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", check=False)
        return proc.stdout.strip() or None

    def common_dir(self) -> Path:
        """The repository's shared git directory (the same for all its worktrees); asked once."""
        if self._common_dir is None:
            dirs = git_dirs(self.cwd)
            self._common_dir = dirs[1] if dirs else (self.cwd / self.out("rev-parse", "--git-common-dir")).resolve()
        return self._common_dir

    def is_clean(self) -> bool:
        return not self.out("status", "--porcelain", "--untracked-files=no")

    def lock(self, timeout_s: float = 120.0) -> RepoLock:
        return RepoLock(self.common_dir(), timeout_s)


_ASK_GIT = object()
_OBJECT_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_PLAIN_BRANCH = re.compile(r"refs/heads/(?!/)(?!.*(?:\.\.|//|/\.|@\{|\.lock$|/$))[A-Za-z0-9._/-]+")


def _branch_from_files(common: Path, ref: str) -> str | object | None:
    """``ref``'s object id from its loose file, else from ``packed-refs`` (git's order: a ref being packed
    is written there before its loose file goes, and both are replaced by rename, never half-written);
    None when neither has it; ``_ASK_GIT`` for a symbolic ref, an unusual name or the reftable backend."""
    if not _PLAIN_BRANCH.fullmatch(ref) or (common / "reftable").exists():
        return _ASK_GIT
    try:
        text = (common / ref).read_text(encoding="ascii").strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        text = None
    except (OSError, UnicodeDecodeError):
        return _ASK_GIT
    if text is not None:
        return text if _OBJECT_ID.fullmatch(text) else _ASK_GIT
    try:
        packed = (common / "packed-refs").read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return _ASK_GIT
    suffix = " " + ref
    for line in packed.splitlines():
        if line.endswith(suffix):
            sha = line[: -len(suffix)]
            return sha if _OBJECT_ID.fullmatch(sha) else _ASK_GIT
    return None


def _head_from_files(top: Path) -> str | object | None:
    """The commit ``top``'s HEAD is at, from its HEAD file and the branch it names (``_branch_from_files``)."""
    dirs = git_dirs(top)
    if dirs is None:
        return _ASK_GIT
    try:
        head = (dirs[0] / "HEAD").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return _ASK_GIT
    if head.startswith("ref: "):
        return _branch_from_files(dirs[1], head.removeprefix("ref: "))
    return head if _OBJECT_ID.fullmatch(head) else _ASK_GIT


class RepoLock:
    """An exclusive lock on one repository's mutations, across processes and threads.

    Each acquisition opens its own file description, so two threads of one actor exclude each other
    as two processes do. Not re-entrant: take it once around a whole mutation."""

    def __init__(self, common_dir: Path, timeout_s: float = 120.0) -> None:
        self.path = Path(common_dir) / "aigentflow.lock"
        self.timeout_s = timeout_s
        self._fd: int | None = None

    def __enter__(self) -> Self:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise GitError(["(lock)"], 1, f"{self.path} stayed locked for {self.timeout_s:g} s; another "
                                   "aigentflow process is changing this repository") from None
                time.sleep(0.005)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
