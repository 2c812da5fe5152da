"""One task of a work breakdown, built: edits applied in its worktree, its tests run in the sandbox.

On the repository's node the Git Agent commits the result afterwards (it owns every mutation of the
user's repository); elsewhere the task commits in its scratch clone and returns a bundle.

``execute_task`` is the body of the Ray task each work-breakdown task runs as (``actors.workflow``
makes it remote). It works in the task's worktree when it runs on the repository's node; anywhere
else it receives the task branch as a git bundle, works in a scratch clone, commits there and sends
the new commits back as a bundle, so no shared filesystem is assumed. Everything it did comes back
in a ``TaskOutcome`` for the run's owner to record. No Ray or model imports here.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aigentflow.gitops.runner import Git

if TYPE_CHECKING:
    from aigentflow.config.settings import BuildSettings


@dataclass(frozen=True)
class BuildSpec:
    """What a build task needs; plain data (it travels to whichever node runs the task)."""

    run_id: str
    task_id: str
    title: str
    worktree: str
    branch: str
    base: str
    """The commit the worktree started from (a remote task's bundle holds only what is after it)."""
    repo_node_id: str
    test_command: str
    limits: dict[str, Any]
    network: bool = False
    commit_message: str = ""
    trailers: dict[str, str] = field(default_factory=dict)
    kind: str = "implement"
    """``tests``: the Tester's edits (test files only); ``implement``: code edits, which may not weaken tests."""


@dataclass
class TaskOutcome:
    task_id: str
    status: str
    """``passed``, ``failed`` (tests), ``refused`` (an edit broke the guard), ``error`` (no change)."""
    detail: str = ""
    changed: list[str] = field(default_factory=list)
    commit: str | None = None
    tests: dict[str, Any] | None = None
    node_id: str = ""
    remote: bool = False
    bundle: bytes | None = None
    duration_s: float = 0.0
    started_ns: int = 0
    ended_ns: int = 0
    commands: list[dict[str, Any]] = field(default_factory=list)
    """The trace records of the sandboxed commands the task ran (``aigentflow.sandbox.commands``)."""

    @property
    def ok(self) -> bool:
        return self.status == "passed"



def limits_from_settings(build: BuildSettings) -> dict[str, Any]:
    """The sandbox ``Limits`` fields from the ``build`` settings section, ``env_passthrough`` and
    ``allow_unconfined``."""
    return {"timeout_s": float(build.timeout_s), "memory_bytes": build.memory_mb * 1024 * 1024,
            "max_processes": build.max_processes, "max_output_bytes": build.max_output_kb * 1024,
            "env_passthrough": list(build.env_passthrough), "allow_unconfined": build.sandbox_allow_unconfined}


_SANDBOX_OPTIONS = ("env_passthrough", "allow_unconfined")


def run_in_sandbox(root: Path, command: str, limits: dict[str, Any], network: bool = False,
                   writable: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Run ``command`` in ``root`` through the sandboxed executor; its record (``ok``, output, isolation,
    and ``results``: the JUnit report when the runner wrote one, else the exit code). ``writable``:
    directories outside ``root`` the command writes (a coverage report's)."""
    from aigentflow.checks.testresults import junit_env, read_reports
    from aigentflow.sandbox import Limits, Sandbox

    with tempfile.TemporaryDirectory(prefix="af-junit-") as reports:
        # No bytecode caches: Python checks them by mtime in whole seconds and size, so a file an agent
        # rewrites within the second of a test run (a fix of the same length) would run stale code.
        env = {**junit_env(Path(reports)), "PYTHONDONTWRITEBYTECODE": "1"}
        fields = {name: value for name, value in limits.items() if name not in _SANDBOX_OPTIONS}
        result = Sandbox(root, limits=Limits(**fields), network=network, extra_env=env,
                         env_passthrough=limits.get("env_passthrough") or (),
                         allow_unconfined=bool(limits.get("allow_unconfined")),
                         writable=(Path(reports), *writable)).run(command)
        results = read_reports(Path(reports)) or {"source": "exit_code", "exit_code": result.exit_code}
    return {**result.to_record(), "ok": result.ok, "summary": result.summary(), "results": results}


def check_edits(workdir: Path, kind: str, edits: list[Any]) -> None:
    """The Tester writes only tests; nobody else may weaken them. Raises ``EditRefused``."""
    from aigentflow.checks.edits import EditRefused
    from aigentflow.checks.testguard import is_test_path, weakening

    for edit in edits:
        if kind == "tests" and not is_test_path(edit.path):
            raise EditRefused(edit.path, "the tester writes tests only; this is not a test file")
        if kind != "tests" and is_test_path(edit.path):
            target = workdir / edit.path
            before = target.read_text(errors="replace") if target.is_file() and not target.is_symlink() else None
            why = weakening(edit.path, before, None if edit.delete else edit.content)
            if why:
                raise EditRefused(edit.path, f"{why}; tests may not be deleted, skipped or weakened to go green")


def execute_task(spec: BuildSpec, change: dict[str, Any], node_id: str,
                 fetch_bundle: Callable[[], bytes] | None = None) -> TaskOutcome:
    """Apply ``change`` (the developer's output) in the task's worktree, test it, commit it.

    ``fetch_bundle`` gives the task branch as a bundle when this node lacks the repository."""
    from aigentflow.checks.edits import EditRefused, FileEdit, apply_edits
    from aigentflow.gitops.bundle import clone_bundle, create_bundle
    from aigentflow.gitops.worktrees import commit_all

    started, clock = time.time_ns(), time.perf_counter()
    outcome = TaskOutcome(spec.task_id, "error", node_id=node_id, started_ns=started)
    local = node_id == spec.repo_node_id and Path(spec.worktree).is_dir()
    scratch: Path | None = None
    try:
        if local:
            workdir = Path(spec.worktree)
        else:
            if fetch_bundle is None:
                outcome.detail = "this node has no copy of the repository and no way to fetch one"
                return outcome
            scratch = Path(tempfile.mkdtemp(prefix=f"af-{spec.task_id}-"))
            workdir = scratch / "clone"
            clone_bundle(fetch_bundle(), workdir, spec.branch)
            outcome.remote = True
        try:
            edits = [FileEdit.model_validate(e) for e in change.get("edits", [])]
            check_edits(workdir, spec.kind, edits)
            outcome.changed = apply_edits(workdir, edits)
        except EditRefused as exc:
            outcome.status, outcome.detail = "refused", str(exc)
            return outcome
        if spec.test_command:
            outcome.tests = run_in_sandbox(workdir, spec.test_command, spec.limits, spec.network)
            outcome.status = "passed" if outcome.tests["ok"] else "failed"
            outcome.detail = outcome.tests["summary"]
        else:
            outcome.status, outcome.detail = "passed", "no test command configured: the task is untested"
        if outcome.remote:  # a scratch clone: commit here and send the commits back (the Git Agent fetches them)
            message = (spec.kind != "tests" and change.get("commit_message")) or spec.commit_message or \
                f"{spec.task_id}: {spec.title}"
            outcome.commit = commit_all(workdir, message, spec.trailers, paths=outcome.changed)
            if outcome.commit:
                outcome.bundle = create_bundle(Git(workdir), spec.branch, since=spec.base or None)
        return outcome
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        outcome.ended_ns = time.time_ns()
        outcome.duration_s = time.perf_counter() - clock


def render_build_report(run_id: str, feature: str, outcomes: dict[str, dict[str, Any]],
                        conflicts: list[dict[str, Any]], overlaps: list[dict[str, Any]]) -> str:
    """``build_report.md``: each task's result, where it ran, its tests, and any conflicts."""
    lines = [f"# Build of run {run_id}\n", f"Feature branch: `{feature}`\n",
             "| Task | Status | Merged | Commit | Tests | Ran on |", "|---|---|---|---|---|---|"]
    for task_id in sorted(outcomes, key=_task_order):
        o = outcomes[task_id]
        where = ("remote node (bundle)" if o.get("remote") else "repository node") if o.get("node_id") else "-"
        tests = (o.get("tests") or {}).get("summary", o.get("detail", "")).replace("|", "\\|")[:120]
        lines.append(f"| {task_id} | {o['status']} | {'yes' if o.get('merged') else 'no'} | "
                     f"{(o.get('commit') or '-')[:10]} | {tests} | {where} |")
    if overlaps:
        lines.append("\n## Overlapping edits between parallel tasks\n")
        lines += [f"- `{o['path']}`: {', '.join(o['tasks'])}" for o in overlaps]
    if conflicts:
        lines.append("\n## Conflicts\n")
        for c in conflicts:
            lines.append(f"- {c['source']} into {c['target']}: {', '.join(c['paths'])} -> {c['resolution']}")
    return "\n".join(lines) + "\n"


def _task_order(task_id: str) -> tuple[int, str]:
    digits = "".join(ch for ch in task_id if ch.isdigit())
    return (int(digits) if digits else 0, task_id)
