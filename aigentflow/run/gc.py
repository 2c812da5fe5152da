"""Clearing away the worktrees (``.aigentflow/worktrees/<run>/...``) and branches
(``aigentflow/<run>/...``) of runs that are over.

- A run whose owner process is alive on this host (or on another host, while the run is not over)
  is never touched, not even with ``--all``.
- COMPLETED runs, and any other run with ``--all``: everything goes.
- FAILED and CANCELLED runs, and abandoned ones (the run id is not in the store): worktrees and
  branches go, except branches holding commits no other ref has (not merged into the integration
  branch, nor anywhere else) and worktrees with uncommitted changes or on such a branch: those are
  kept so no work is lost, until ``--all``.
- Runs still going or resumable (any other state): kept until ``--all``.
"""

from __future__ import annotations

import shutil
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UnknownRun
from aigentflow.gitops import names
from aigentflow.gitops.runner import Git
from aigentflow.gitops.worktrees import Worktrees, checked_out_at, list_worktrees

FINISHED = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


@dataclass
class GcItem:
    run_id: str
    kind: str
    """"worktree", "branch" or "directory" (a worktree directory git no longer knows)."""
    name: str
    state: str | None
    """The run's state, or None for an abandoned run (not in the store)."""
    reason: str = ""


@dataclass
class GcReport:
    dry_run: bool
    removed: list[GcItem] = field(default_factory=list)
    kept: list[GcItem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "removed": [asdict(i) for i in self.removed],
                "kept": [asdict(i) for i in self.kept]}


def run_ids(trees: Worktrees) -> list[str]:
    """Every run id that has a branch, a worktree or a worktree directory in the repository."""
    found = {b.split("/")[1] for b in trees.run_branches() if b.count("/") >= 2}
    for entry in list_worktrees(trees.git):
        path = Path(entry["path"])
        if path.is_relative_to(trees.dir):
            found.add(path.relative_to(trees.dir).parts[0])
    if trees.dir.is_dir():
        found.update(child.name for child in trees.dir.iterdir() if child.is_dir())
    return sorted(found)


def _unmerged(git: Git, branch: str, run_refs: set[str]) -> bool:
    """True when some commit of ``branch`` is on no ref outside the run's own branches."""
    head = git.rev(f"refs/heads/{branch}")
    if head is None:
        return False
    containing = git.out("for-each-ref", f"--contains={head}", "--format=%(refname)",
                         "refs/heads", "refs/tags", "refs/remotes").splitlines()
    return not [ref for ref in containing if ref and ref not in run_refs]


def _dirty(path: Path) -> bool:
    return path.is_dir() and bool(Git(path).out("status", "--porcelain"))


def _why_untouchable(run: Any) -> str | None:
    if run is None or not run.owner_pid:
        return None
    if run.owner_host == socket.gethostname():
        if run.owner_alive_here():
            return f"run is going (process {run.owner_pid} on this host owns it)"
        return None
    if run.state not in FINISHED:
        return f"run {run.state} is owned by process {run.owner_pid} on {run.owner_host}, which gc cannot check"
    return None


def plan_run(trees: Worktrees, run_id: str, run: Any, everything: bool) -> tuple[list[GcItem], list[GcItem]]:
    """What gc does to one run: (items to remove, items kept), worktrees before branches."""
    state = run.state if run is not None else None
    git = trees.git
    worktrees = trees.for_run(run_id)
    elsewhere = {e.get("branch") for e in list_worktrees(git) if not Path(e["path"]).is_relative_to(trees.dir)}
    all_branches = trees.run_branches(run_id)
    branches = [b for b in all_branches if b not in elsewhere]
    registered = {Path(e["path"]) for e in worktrees}
    run_dir = trees.dir / names.component(run_id)
    leftovers = sorted(p for p in run_dir.iterdir() if p.resolve() not in registered) if run_dir.is_dir() else []

    def item(kind: str, name: str, reason: str = "") -> GcItem:
        return GcItem(run_id, kind, name, state, reason)

    everything_items = ([item("worktree", e["path"]) for e in worktrees]
                        + [item("directory", str(p)) for p in leftovers]
                        + [item("branch", b) for b in branches])
    untouchable = _why_untouchable(run)
    if untouchable:
        return [], [item(i.kind, i.name, untouchable) for i in everything_items]
    if state is not None and state not in FINISHED and not everything:
        reason = f"run is {state} and can be resumed; `aigentflow gc --all` removes it"
        return [], [item(i.kind, i.name, reason) for i in everything_items]
    kept = [item("branch", b, f"checked out at {checked_out_at(git, b)}, outside .aigentflow/worktrees")
            for b in all_branches if b in elsewhere]
    if everything or state == "COMPLETED":
        return everything_items, kept

    remove: list[GcItem] = []
    why_run = f"run is {state}" if state else "run is not in the store"
    run_refs = {f"refs/heads/{b}" for b in all_branches}
    kept_branches = set()
    for branch in branches:
        if _unmerged(git, branch, run_refs):
            kept_branches.add(branch)
            kept.append(item("branch", branch, f"{why_run} and the branch has commits merged nowhere else; "
                                               "`aigentflow gc --all` removes it"))
    for entry in worktrees:
        path = Path(entry["path"])
        if _dirty(path):
            kept.append(item("worktree", str(path), f"{why_run} and the worktree has uncommitted changes; "
                                                    "`aigentflow gc --all` removes it"))
            kept_branches.add(entry.get("branch", ""))
        elif entry.get("branch") in kept_branches:
            kept.append(item("worktree", str(path), "its branch is kept"))
        else:
            remove.append(item("worktree", str(path)))
    remove += [item("directory", str(p)) for p in leftovers]
    for branch in branches:
        if branch not in kept_branches:
            remove.append(item("branch", branch))
        elif not any(k.name == branch for k in kept):
            kept.append(item("branch", branch, "its worktree is kept"))
    return remove, kept


def _remove(trees: Worktrees, target: GcItem) -> None:
    if target.kind == "worktree":
        trees.remove(Path(target.name))
    elif target.kind == "directory":
        shutil.rmtree(target.name, ignore_errors=True)
    else:
        with trees.git.lock():
            if trees.git.rev(f"refs/heads/{names.check_branch(target.name)}"):
                trees.git.run("branch", "-D", "--end-of-options", target.name)


def collect_garbage(root: Path, store: Any, *, dry_run: bool = False, everything: bool = False) -> GcReport:
    """Remove (or, with ``dry_run``, list) what the module docstring says may go."""
    trees = Worktrees(root)
    report = GcReport(dry_run)
    for run_id in run_ids(trees):
        try:
            run = store.get_run(run_id)
        except UnknownRun:
            run = None
        remove, kept = plan_run(trees, run_id, run, everything)
        report.kept += kept
        for target in remove:
            if not dry_run:
                _remove(trees, target)
            report.removed.append(target)
        run_dir = trees.dir / names.component(run_id)
        if not dry_run and run_dir.is_dir() and not any(run_dir.iterdir()):
            run_dir.rmdir()
    return report
