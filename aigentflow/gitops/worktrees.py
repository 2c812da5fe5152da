"""The feature branch of a run and one worktree per task, under ``.aigentflow/worktrees/``.

``ensure_*`` are idempotent: a resumed run gets its existing worktrees back (re-attached, not
recreated), a worktree directory left half-made by a killed process is cleared and made again, and a
task worktree is only ever created from the feature branch's head, which must exist (never silently
from the integration branch). All mutations hold the repository lock.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aigentflow.exceptions import UsageError
from aigentflow.gitops import names
from aigentflow.gitops.runner import Git, GitError


@dataclass(frozen=True)
class Worktree:
    path: Path
    branch: str
    head: str
    reattached: bool
    """True when the worktree already existed (a resumed run), False when made now."""


def list_worktrees(git: Git) -> list[dict[str, str]]:
    """``git worktree list --porcelain`` as dicts: path, head, branch (short name, or "")."""
    entries: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in [*git.out("worktree", "list", "--porcelain", "-z").split("\0"), ""]:
        if not line:
            if current:
                entries.append(current)
            current = {}
            continue
        key, _, value = line.partition(" ")
        if key == "worktree":
            current["path"] = str(Path(value).resolve())
        elif key == "HEAD":
            current["head"] = value
        elif key == "branch":
            current["branch"] = value.removeprefix("refs/heads/")
        elif key in ("prunable", "locked", "detached", "bare"):
            current[key] = value or "yes"
    return entries


def _checked_out_branch(path: Path) -> str | None:
    """The branch of the worktree at ``path`` ("" when detached), or None if no live worktree is there.

    Read from the worktree's files (``.git`` -> gitdir -> ``HEAD``): no git process."""
    try:
        pointer = (path / ".git").read_text().strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    if not pointer.startswith("gitdir: "):
        return None
    gitdir = Path(pointer.removeprefix("gitdir: "))
    gitdir = gitdir if gitdir.is_absolute() else (path / gitdir)
    try:
        head = (gitdir / "HEAD").read_text().strip()
        registered = Path((gitdir / "gitdir").read_text().strip()).parent.resolve() == path.resolve()
    except FileNotFoundError:
        return None
    if not registered:
        return None
    return head.removeprefix("ref: refs/heads/") if head.startswith("ref: ") else ""


def checked_out_at(git: Git, branch: str) -> Path | None:
    """The worktree that has ``branch`` checked out (the main one included), if any."""
    for entry in list_worktrees(git):
        if entry.get("branch") == branch:
            return Path(entry["path"])
    return None


class Worktrees:
    """Worktrees and branches of the runs of one repository."""

    def __init__(self, repo_root: Path, worktrees_dir: Path | None = None) -> None:
        self.root = Path(repo_root).resolve()
        self.git = Git(self.root)
        self.dir = Path(worktrees_dir) if worktrees_dir else self.root / ".aigentflow" / "worktrees"

    def path_for(self, run_id: str, label: str) -> Path:
        return self.dir / names.worktree_dirname(run_id, label)

    def ensure_feature(self, run_id: str, base_branch: str) -> str:
        """The run's feature branch, created at ``base_branch``'s head the first time."""
        branch = names.feature_branch(run_id)
        names.check_branch(base_branch)
        with self.git.lock():
            if self.git.rev(f"refs/heads/{branch}"):
                return branch
            base = self.git.rev(f"refs/heads/{base_branch}")
            if base is None:
                raise UsageError(f"the integration branch {base_branch!r} does not exist in {self.root}; set "
                                 "`git.integration_branch` to an existing branch")
            self.git.run("branch", "--no-track", "--end-of-options", branch, base)
        return branch

    def ensure_task(self, run_id: str, task_id: str) -> Worktree:
        """The task's worktree on its own branch, made from the feature branch's head."""
        feature = names.feature_branch(run_id)
        if not self.git.rev(f"refs/heads/{feature}"):
            raise UsageError(f"run {run_id} has no feature branch {feature!r}; a task worktree is only made from it")
        return self.ensure(self.path_for(run_id, f"task-{task_id}"), names.task_branch(run_id, task_id), feature)

    def ensure(self, path: Path, branch: str, base_ref: str) -> Worktree:
        """A worktree at ``path`` on ``branch`` (made from ``base_ref`` if the branch is new)."""
        names.check_branch(branch)
        path = Path(path)
        with self.git.lock():
            existing = _checked_out_branch(path)
            if existing is not None:
                if existing != branch:
                    raise UsageError(f"{path} is a worktree of {existing or 'a detached HEAD'}, not {branch}; "
                                     "remove it with `aigentflow gc`")
                return Worktree(path, branch, Git(path).out("rev-parse", "HEAD"), reattached=True)
            if path.exists():  # left half-made by a killed process: it is ours, make it again
                shutil.rmtree(path)
                self.git.run("worktree", "prune")
            path.parent.mkdir(parents=True, exist_ok=True)
            if base_ref.startswith("-"):
                raise names.UnsafeName(f"base {base_ref!r} refused: it starts with '-'")
            made = self.git.run("worktree", "add", "--quiet", "--no-track", "-b", branch, str(path), base_ref,
                                check=False)
            if made.returncode != 0:
                if self.git.rev(f"refs/heads/{branch}"):  # a resumed run's branch, or a stale registration
                    self.git.run("worktree", "prune")
                    self.git.run("worktree", "add", "--quiet", str(path), branch)
                elif self.git.rev(base_ref) is None:
                    raise UsageError(f"cannot make {branch}: its base {base_ref!r} does not exist")
                else:
                    raise GitError(["worktree", "add", str(path)], made.returncode, made.stderr)
        head = self.git.rev(f"refs/heads/{branch}") or Git(path).out("rev-parse", "HEAD")
        return Worktree(path, branch, head, reattached=False)

    def detached(self, path: Path, commit: str) -> Path:
        """A worktree at ``path`` on a detached HEAD at ``commit``: no branch is made (a shadow's scratch)."""
        path = Path(path)
        if commit.startswith("-"):
            raise names.UnsafeName(f"commit {commit!r} refused: it starts with '-'")
        with self.git.lock():
            if path.exists():  # left by a killed process: it is ours, make it again
                self.git.run("worktree", "remove", "--force", "--force", str(path), check=False)
                shutil.rmtree(path, ignore_errors=True)
                self.git.run("worktree", "prune")
            path.parent.mkdir(parents=True, exist_ok=True)
            self.git.run("worktree", "add", "--quiet", "--detach", str(path), commit)
        return path

    def remove(self, path: Path, *, branch: str | None = None) -> None:
        """Remove a worktree (even with changes in it) and, if given, its branch."""
        with self.git.lock():
            gone = self.git.run("worktree", "remove", "--force", "--force", str(path), check=False)
            if gone.returncode != 0:
                if Path(path).exists():
                    shutil.rmtree(path)
                self.git.run("worktree", "prune")
            if branch:
                deleted = self.git.run("branch", "-D", "--end-of-options", names.check_branch(branch), check=False)
                if deleted.returncode != 0 and self.git.rev(f"refs/heads/{branch}"):
                    raise GitError(["branch", "-D", branch], deleted.returncode, deleted.stderr)

    def for_run(self, run_id: str) -> list[dict[str, str]]:
        prefix = str(self.dir / names.component(run_id)) + "/"
        return [e for e in list_worktrees(self.git) if e["path"].startswith(prefix)]

    def run_branches(self, run_id: str | None = None) -> list[str]:
        """aigentflow's branches (of one run, or of all runs)."""
        pattern = f"refs/heads/{names.run_prefix(run_id) if run_id else names.PREFIX + '/'}"
        return [b for b in self.git.out("for-each-ref", "--format=%(refname:short)", pattern).splitlines() if b]


_NOTHING_TO_COMMIT = re.compile(r"^(nothing to commit|nothing added to commit|no changes added to commit)", re.M)


def commit_all(worktree: Path, message: str, trailers: Mapping[str, str],
               author: tuple[str, str] | None = None, paths: Sequence[str] | None = None) -> str | None:
    """Commit what changed in ``worktree`` (only ``paths``, when given: what a test run leaves behind,
    such as ``__pycache__``, is not the agent's work) with ``trailers``; the new commit, or None."""
    git = Git(worktree, author=author)
    if paths is not None and not paths:
        return None
    with git.lock():
        git.run("add", "--all", "--", *(paths if paths is not None else ["."]))
        args = ["commit", "--quiet", "--no-verify", "-m", message]
        for key, value in trailers.items():
            args += ["--trailer", f"{key}: {value}"]
        made = git.run(*args, check=False)
        if made.returncode == 1 and _NOTHING_TO_COMMIT.search(made.stdout):
            return None  # nothing staged: git says so (in C: git's environment fixes LC_ALL) and exits 1
        if made.returncode != 0:
            raise GitError(args, made.returncode, made.stderr, made.stdout)
        return git.rev("HEAD") or git.out("rev-parse", "HEAD")


def trailers_of(git: Git, commit: str) -> dict[str, str]:
    """The trailers of one commit (``Aigentflow-Run: ...``) as a dict."""
    text = git.out("log", "-1", "--format=%(trailers:only,unfold)", "--end-of-options", commit)
    result = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            result[key.strip()] = value.strip()
    return result
