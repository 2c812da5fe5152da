"""The demo's sample project (package data under ``sample/``) and how to lay it out as a git repo."""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path

DEMO_REQUEST = "Add due dates to tasks and a command that lists overdue tasks"


def demo_settings() -> dict[str, str]:
    """What the demo turns on beyond the MVP: building in worktrees with tests first, the fix loop,
    review, coverage and the merge, and on a terminal the live display of the run (GenUI output). The
    sample's tests run with this interpreter (it has pytest)."""
    import sys

    flags = ("agents.backendDev", "agents.tester", "agents.bugFixer", "agents.reviewer", "agents.gitAgent",
             "agents.mergeResolver", "features.gitWorktrees", "features.tddWorkflow", "features.bugFixLoop",
             "features.codeReview", "features.coverageTracking", "platform.genUIOutput")
    settings = {**{f"flags.{flag}": "true" for flag in flags}, "build.test_command": f"{sys.executable} -m pytest -q",
                "build.task_cpus": "0.5"}
    if unconfined_reason():
        # The demo's commands are the sample's own tests on edits replayed from its cassette (recorded, not
        # written by a model now): on a machine without bubblewrap it runs them unconfined, and says so.
        settings["build.sandbox_allow_unconfined"] = "true"
    return settings


def unconfined_reason() -> str | None:
    """Why this machine cannot confine commands' filesystem (no working bubblewrap), or None when it can."""
    from aigentflow.sandbox.executor import check_confinement

    return None if check_confinement(True) == "bwrap" else (
        "bubblewrap is not installed or does not work here, so the sample's commands run without filesystem "
        "confinement (the demo's edits are replayed from its recording, not written by a model); install it "
        "(`apt-get install bubblewrap`) to see them confined")
GIT = ["git", "-c", "user.name=aigentflow demo", "-c", "user.email=demo@aigentflow.invalid",
       "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false"]


def create_sample_project(target: Path) -> Path:
    """Copy the sample project to ``target`` and commit it to a new git repository there."""
    sample = Path(str(resources.files("aigentflow") / "demo" / "sample"))
    shutil.copytree(sample, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    subprocess.run([*GIT, "init", "-q", "-b", "main", str(target)], check=True)
    subprocess.run([*GIT, "-C", str(target), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(target), "commit", "-q", "-m", "Sample project"], check=True)
    return target
