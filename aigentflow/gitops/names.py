"""Branch names aigentflow creates, and the check every branch or path name passes first.

Names are built from ids (``aigentflow/<run>/feature``, ``aigentflow/<run>/task/<task>``) so that
``git branch`` reads as the runs' work, and a name is refused unless it is a plain, valid branch
name: a name that could be read as an option (``--upload-pack=...``), a revision expression, or a
path outside the repository never reaches a git command.
"""

from __future__ import annotations

import re

from aigentflow.exceptions import UsageError

PREFIX = "aigentflow"
_COMPONENT = re.compile(r"[^A-Za-z0-9._-]+")
_SAFE_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")


class UnsafeName(UsageError):
    """A branch, ref or path name that aigentflow will not pass to git."""


def component(text: str) -> str:
    """One path component of a branch name from arbitrary text (ids, titles): safe characters only."""
    cleaned = _COMPONENT.sub("-", text).strip("-.")
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    cleaned = cleaned.removesuffix(".lock")
    if not cleaned:
        raise UnsafeName(f"{text!r} has no characters usable in a branch name (letters, digits, '.', '_', '-')")
    return cleaned[:60]


def check_branch(name: str) -> str:
    """``name`` if it is a plain branch name, else ``UnsafeName`` saying why."""
    why = _branch_problem(name)
    if why:
        raise UnsafeName(f"branch name {name!r} refused: {why}")
    return name


def _branch_problem(name: str) -> str | None:
    if not name:
        return "it is empty"
    if name.startswith("-"):
        return "it starts with '-', so git would read it as an option"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "it contains control characters"
    if not _SAFE_BRANCH.match(name):
        return "only letters, digits, '.', '_', '-' and '/' are allowed, starting with a letter or digit"
    if ".." in name or "//" in name or name.endswith(("/", ".", ".lock")) or "/." in name or "@{" in name:
        return "it is not a valid git branch name ('..', '//', '/.', '@{', or a trailing '/', '.' or '.lock')"
    if name == "HEAD" or name.startswith("refs/"):
        return "it names a ref, not a branch"
    return None


def feature_branch(run_id: str) -> str:
    return check_branch(f"{PREFIX}/{component(run_id)}/feature")


def task_branch(run_id: str, task_id: str) -> str:
    return check_branch(f"{PREFIX}/{component(run_id)}/task/{component(task_id)}")


def resolve_branch(run_id: str, label: str) -> str:
    """The scratch branch a conflict resolution is tried on."""
    return check_branch(f"{PREFIX}/{component(run_id)}/resolve/{component(label)}")


def run_prefix(run_id: str) -> str:
    return f"{PREFIX}/{component(run_id)}/"


def worktree_dirname(run_id: str, label: str) -> str:
    """The worktree's directory under ``.aigentflow/worktrees/``: ``<run>/<label>``."""
    return f"{component(run_id)}/{component(label)}"
