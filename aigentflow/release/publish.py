"""Publishing a release: the changelog commit (built in a temporary index: no working tree is
touched), the branch moved with ``move_branch``, the annotated tag, the record in the store."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UsageError
from aigentflow.gitops.merge import move_branch, recover
from aigentflow.gitops.runner import Git
from aigentflow.gitops.worktrees import checked_out_at
from aigentflow.release.commits import RELEASE_SUBJECT
from aigentflow.release.plan import CHANGELOG, ReleasePlan, plan_release


def check_worktree(git: Git, branch: str) -> None:
    """Refuse (nothing changed) when the checked-out ``branch`` could not follow the release commit."""
    worktree = checked_out_at(git, branch)
    if worktree is None:
        return
    if not Git(worktree).is_clean():
        raise UsageError(f"{branch} is checked out at {worktree} with uncommitted changes to tracked files; "
                         "commit or stash them, then run `aigentflow release` again. Nothing was changed.")
    tracked = Git(worktree).out("ls-files", "--", CHANGELOG)
    if not tracked and os.path.lexists(worktree / CHANGELOG):
        raise UsageError(f"{worktree / CHANGELOG} exists but is not committed; the release would overwrite it. "
                         "Commit or move it, then run `aigentflow release` again. Nothing was changed.")


def user_identity(git: Git) -> tuple[str, str] | None:
    """The repository's configured ``user.name`` and ``user.email``, when both are set."""
    name = git.run("config", "--get", "user.name", check=False).stdout.strip()
    email = git.run("config", "--get", "user.email", check=False).stdout.strip()
    return (name, email) if name and email else None


def commit_changelog(git: Git, parent: str, text: str, message: str) -> str:
    """A commit on ``parent`` whose only change is ``CHANGELOG.md``, built in a temporary index."""
    listed = git.out("ls-tree", parent, "--", CHANGELOG).split()
    mode = listed[0] if listed and listed[1] == "blob" else "100644"
    blob = git.out("hash-object", "-w", "--stdin", input=text)
    with tempfile.TemporaryDirectory(prefix="af-release-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git.run("read-tree", parent, env=env)
        git.run("update-index", "--add", "--cacheinfo", f"{mode},{blob},{CHANGELOG}", env=env)
        tree = git.out("write-tree", env=env)
    return git.out("commit-tree", tree, "-p", parent, "-m", message)


def publish(git: Git, plan: ReleasePlan, store: Any, *, tenant_id: str = "default") -> dict[str, Any]:
    """Commit the changelog, move the branch, tag the commit and record the release."""
    with git.lock():
        recover(git)
        head = git.rev(f"refs/heads/{plan.branch}")
        if head != plan.head:
            raise UsageError(f"{plan.branch} moved while the release was prepared; run `aigentflow release` again")
        if plan.resumed:
            commit = plan.head
        else:
            check_worktree(git, plan.branch)
            commit = commit_changelog(git, plan.head, plan.changelog, RELEASE_SUBJECT.format(tag=plan.tag))
            move_branch(git, plan.branch, plan.head, commit)
        if git.rev(f"refs/tags/{plan.tag}") is None:
            git.run("tag", "-a", "--cleanup=whitespace", "-m", f"Release {plan.tag}\n\n{plan.section}",
                    "--end-of-options", plan.tag, commit)
    project = store.get_project()
    if project is None:
        raise UsageError("this project has no record in its state database; run `aigentflow init` and then "
                         f"`aigentflow release` again to record {plan.tag}")
    record = store.record_release(project_id=project["id"], version=str(plan.version), tag=plan.tag,
                                  commit_sha=commit, changelog=plan.section,
                                  run_ids=[r.run_id for r in plan.runs], tenant_id=tenant_id)
    return {**plan.report(), "commit": commit, "release_id": record.id}


def release(root: Path, *, version: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """``aigentflow release``: plan, then (unless ``dry_run``) commit, tag and record."""
    from aigentflow.config.loader import load_config
    from aigentflow.project.paths import locate_project
    from aigentflow.store.sqlite import SQLiteRunStore

    paths = locate_project(root)
    config = load_config(paths.root)
    branch = str(config.get("git.integration_branch"))
    if not branch:
        raise UsageError("no integration branch is configured; set one with "
                         "`aigentflow config set git.integration_branch main`")
    prefix = str(config.get("git.tag_prefix"))
    identity = user_identity(Git(paths.root))
    git = Git(paths.root, author=identity)
    store = SQLiteRunStore(paths.database)
    try:
        plan = plan_release(git, branch, prefix, store, version)
        if dry_run:
            return {**plan.report(), "dry_run": True}
        return {**publish(git, plan, store, tenant_id=str(config.get("run.tenant"))), "dry_run": False}
    finally:
        store.close()
