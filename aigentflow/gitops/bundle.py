"""Commits between nodes without a shared filesystem: git bundles carried as bytes (Ray objects).

The repository's node sends a task's branch as a bundle; a node without the repository clones it
into a scratch directory, works, and sends back a bundle of the new commits, which the repository's
node fetches into the task's branch.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from aigentflow.gitops import names
from aigentflow.gitops.runner import Git


def create_bundle(git: Git, branch: str, *, since: str | None = None) -> bytes:
    """``branch`` (all of its history, or only what is after ``since``) as bundle bytes."""
    names.check_branch(branch)
    with tempfile.TemporaryDirectory(prefix="af-bundle-") as tmp:
        target = Path(tmp) / "b.bundle"
        spec = f"{since}..{branch}" if since else branch
        git.run("bundle", "create", "--quiet", str(target), spec)
        return target.read_bytes()


def clone_bundle(data: bytes, dest: Path, branch: str) -> Git:
    """A working clone at ``dest`` with ``branch`` checked out, from bundle bytes."""
    names.check_branch(branch)
    bundle = Path(dest).parent / (Path(dest).name + ".bundle")
    bundle.write_bytes(data)
    try:
        Git(Path(dest).parent).run("clone", "--quiet", "--no-checkout", str(bundle), str(dest))
        clone = Git(dest)
        clone.run("checkout", "--quiet", "-B", branch, f"refs/remotes/origin/{branch}")
        return clone
    finally:
        bundle.unlink(missing_ok=True)


def fetch_bundle(git: Git, data: bytes, branch: str, into: str) -> str:
    """Fetch ``branch`` from bundle bytes into the ref ``into``; returns the commit fetched."""
    names.check_branch(branch)
    with tempfile.TemporaryDirectory(prefix="af-bundle-") as tmp:
        bundle = Path(tmp) / "in.bundle"
        bundle.write_bytes(data)
        git.run("bundle", "verify", "--quiet", str(bundle))
        git.run("fetch", "--quiet", "--no-tags", str(bundle), f"+refs/heads/{branch}:{into}")
    return git.out("rev-parse", into)
