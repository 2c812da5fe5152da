"""Conflict prediction and merges that never leave a repository half-merged.

``predict`` runs ``git merge-tree --write-tree`` (git 2.38+): the merge is computed in the object
database, no working tree or index is touched, and conflicts come back with the conflicting hunks
as evidence. ``merge_into`` moves a branch atomically: the merge commit is built with
``commit-tree`` from the predicted tree, and the branch moves with a compare-and-swap
``update-ref``. When the target branch is checked out (the user's integration branch, usually), its
worktree is brought along first under a journal in the git directory; a process killed at any
point leaves the journal, and ``recover`` (run before every merge) finishes the move.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from aigentflow import faults
from aigentflow.exceptions import RunFailure, UsageError
from aigentflow.gitops import names
from aigentflow.gitops.runner import Git
from aigentflow.gitops.worktrees import checked_out_at

MergeStyle = Literal["merge", "ff", "ff-only"]
JOURNAL = "aigentflow-merge.json"
MAX_HUNK_CHARS = 4000


@dataclass
class ConflictHunk:
    path: str
    ours: str
    theirs: str
    line: int
    """1-based line of the ``<<<<<<<`` marker in the merged file."""


@dataclass
class MergePrediction:
    ours: str
    theirs: str
    clean: bool
    tree: str
    conflicted_paths: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    hunks: list[ConflictHunk] = field(default_factory=list)

    def evidence(self) -> dict:
        return {"ours": self.ours, "theirs": self.theirs, "conflicted_paths": self.conflicted_paths,
                "messages": self.messages, "hunks": [asdict(h) for h in self.hunks]}


class MergeConflict(RunFailure):
    """A merge would conflict; ``prediction`` holds the paths and hunks."""

    def __init__(self, target: str, source: str, prediction: MergePrediction) -> None:
        self.prediction = prediction
        super().__init__(f"merging {source} into {target} conflicts in {', '.join(prediction.conflicted_paths)}")


@dataclass
class MergeOutcome:
    target: str
    old: str
    new: str
    kind: Literal["up-to-date", "fast-forward", "merge"]


def predict(git: Git, ours: str, theirs: str) -> MergePrediction:
    """What merging ``theirs`` into ``ours`` would give, computed without touching any working tree."""
    ours_sha, theirs_sha = _commit(git, ours), _commit(git, theirs)
    proc = git.run("merge-tree", "--write-tree", "-z", "--messages", "--name-only", ours_sha, theirs_sha, check=False)
    if proc.returncode not in (0, 1):
        raise UsageError(f"git merge-tree failed: {proc.stderr.strip()}")
    tree, _, rest = proc.stdout.partition("\0")
    paths_part, _, messages_part = rest.partition("\0\0") if proc.returncode == 1 else ("", "", rest)
    conflicted = sorted({p for p in paths_part.split("\0") if p})
    prediction = MergePrediction(ours_sha, theirs_sha, proc.returncode == 0, tree.strip(), conflicted,
                                 _messages(messages_part))
    for path in conflicted:
        prediction.hunks.extend(_hunks(git, tree.strip(), path))
    return prediction


def _commit(git: Git, ref: str) -> str:
    sha = git.rev(ref)
    if sha is None:
        raise UsageError(f"{ref!r} is not a commit in {git.cwd}")
    return sha


def _messages(raw: str) -> list[str]:
    # -z messages: <count>\0<path>...\0<type>\0<message>\0 repeated
    parts = raw.split("\0")
    messages, i = [], 0
    while i < len(parts) and parts[i].isdigit():
        count = int(parts[i])
        i += 1 + count
        if i + 1 < len(parts):
            messages.append(parts[i + 1].strip())
        i += 2
    return messages


def _hunks(git: Git, tree: str, path: str) -> list[ConflictHunk]:
    proc = git.run("cat-file", "-p", f"{tree}:{path}", check=False)
    if proc.returncode != 0 or "\0" in proc.stdout:  # binary, deleted on one side, a file/dir clash: no hunks
        return [ConflictHunk(path, "", "", 0)]
    hunks, ours, theirs, mode, start = [], [], [], None, 0
    for number, line in enumerate(proc.stdout.splitlines(), 1):
        if line.startswith("<<<<<<< "):
            mode, ours, theirs, start = "ours", [], [], number
        elif line.startswith("||||||| ") and mode == "ours":
            mode = "base"
        elif line == "=======" and mode in ("ours", "base"):
            mode = "theirs"
        elif line.startswith(">>>>>>> ") and mode == "theirs":
            hunks.append(ConflictHunk(path, "\n".join(ours)[:MAX_HUNK_CHARS], "\n".join(theirs)[:MAX_HUNK_CHARS],
                                      start))
            mode = None
        elif mode == "ours":
            ours.append(line)
        elif mode == "theirs":
            theirs.append(line)
    return hunks or [ConflictHunk(path, "", "", 0)]


def is_ancestor(git: Git, older: str, newer: str) -> bool:
    return git.run("merge-base", "--is-ancestor", older, newer, check=False).returncode == 0


def merge_into(git: Git, target: str, source: str, *, message: str, trailers: dict[str, str] | None = None,
               style: MergeStyle = "merge") -> MergeOutcome:
    """Merge ``source`` into branch ``target``; raises ``MergeConflict`` (nothing changed) on a conflict.

    ``style``: "merge" always records a merge commit (unless already merged), "ff" fast-forwards
    when it can, "ff-only" refuses anything but a fast-forward."""
    names.check_branch(target)
    with git.lock():
        recover(git)
        old = _commit(git, f"refs/heads/{target}")
        theirs = _commit(git, source)
        if is_ancestor(git, theirs, old):
            return MergeOutcome(target, old, old, "up-to-date")
        if style in ("ff", "ff-only") and is_ancestor(git, old, theirs):
            move_branch(git, target, old, theirs)
            return MergeOutcome(target, old, theirs, "fast-forward")
        if style == "ff-only":
            raise UsageError(f"{target} cannot be fast-forwarded to {source} (they diverged) and git.merge_style "
                             "is ff-only; set it to merge or ff")
        prediction = predict(git, old, theirs)
        if not prediction.clean:
            raise MergeConflict(target, source, prediction)
        new = git.out("commit-tree", prediction.tree, "-p", old, "-p", theirs, "-m", with_trailers(message, trailers))
        move_branch(git, target, old, new)
        return MergeOutcome(target, old, new, "merge")


def with_trailers(message: str, trailers: dict[str, str] | None) -> str:
    if not trailers:
        return message
    return message.rstrip() + "\n\n" + "\n".join(f"{k}: {v}" for k, v in trailers.items()) + "\n"


def move_branch(git: Git, branch: str, old: str, new: str) -> None:
    """Move ``branch`` from ``old`` to ``new``; its worktree (if checked out) follows, journalled.

    The caller holds the repository lock and has run ``recover``."""
    worktree = checked_out_at(git, branch)
    if worktree is None:
        git.run("update-ref", "-m", "aigentflow merge", f"refs/heads/{branch}", new, old)
        return
    wt = Git(worktree)
    if not wt.is_clean():
        raise UsageError(f"{branch} is checked out at {worktree} with uncommitted changes to tracked files; commit "
                         "or stash them, then `aigentflow resume` the run")
    journal = {"branch": branch, "old": old, "new": new, "worktree": str(worktree)}
    _journal_path(git).write_text(json.dumps(journal))
    faults.point("merge.before-sync")
    wt.run("read-tree", "-m", "-u", old, new)
    faults.point("merge.after-sync")
    git.run("update-ref", "-m", "aigentflow merge", f"refs/heads/{branch}", new, old)
    _journal_path(git).unlink()




def recover(git: Git) -> dict | None:
    """Finish a branch move a killed process left half done; returns the journal it acted on."""
    path = _journal_path(git)
    if not path.exists():
        return None
    journal = json.loads(path.read_text())
    wt = Git(journal["worktree"])
    branch, old, new = journal["branch"], journal["old"], journal["new"]
    wt_git_dir = Path(wt.out("rev-parse", "--absolute-git-dir"))
    stale = wt_git_dir / "index.lock"
    if stale.exists():  # we hold the repository lock: the process that made it is gone
        stale.unlink()
    head = git.rev(f"refs/heads/{branch}")
    if head in (old, new):
        # The worktree was clean before the move (checked), so resetting it to ``new`` loses nothing.
        wt.run("read-tree", "--reset", "-u", new)
        if head == old:
            git.run("update-ref", "-m", "aigentflow merge (recovered)", f"refs/heads/{branch}", new, old)
    path.unlink()
    return journal


def _journal_path(git: Git) -> Path:
    return git.common_dir() / JOURNAL

