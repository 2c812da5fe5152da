"""A run recorded through the real store API, step by step as the engine records one: the plan, a build
whose reviewer asked for changes once (with text that looks like rich markup), the feature's review
with a lint finding. What the GenUI tests render and validate without Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aigentflow.project.paths import ProjectPaths
from aigentflow.store.records import StepUsage
from aigentflow.store.sqlite import SQLiteRunStore

PLAN = {"tasks": [
    {"id": "T1", "title": "Due dates in the store", "description": "Store an optional due date.", "type": "backend",
     "depends_on": [], "acceptance_criteria": ["a bad date is refused", "old files still load"],
     "estimate_hours": 1.5},
    {"id": "T2", "title": "An overdue command", "description": "List overdue tasks.", "type": "backend",
     "depends_on": ["T1"], "acceptance_criteria": ["lists only open tasks that are late"], "estimate_hours": 2},
]}
COMMENT = "Use [bold]dates[/bold] as ISO strings"
"""A review comment that rich would read as markup: it must be shown as written."""


def _review(round_number: int, verdict: str, comments: list[dict[str, Any]]) -> dict[str, Any]:
    return {"round": round_number, "verdict": verdict, "model_verdict": verdict, "summary": f"round {round_number}",
            "comments": comments, "lint": {"tool": "ruff", "ran": True, "findings": [], "detail": "0 finding(s)"}}


BUILD = {
    "feature_branch": "aigentflow/r/feature", "integration_branch": "main", "conflicts": [], "overlaps": [],
    "test_command": "pytest -q", "coverage_baseline": None,
    "tasks": {
        "T1": {"task_id": "T1", "status": "passed", "merged": True, "commit": "a" * 40, "detail": "tests pass",
               "fix_attempts": [], "reviews": [
                   _review(1, "request_changes", [{"path": "src/store.py", "line": 12, "body": "Refuse bad dates",
                                                   "severity": "major"}]),
                   _review(2, "approve", [{"path": "src/store.py", "line": 30, "body": COMMENT,
                                           "severity": "nit"}])]},
        "T2": {"task_id": "T2", "status": "passed", "merged": True, "commit": "b" * 40, "detail": "tests pass",
               "fix_attempts": [{"attempt": 1, "status": "passed", "detail": "fixed"}],
               "reviews": [_review(1, "approve", [])]},
    },
}
REVIEW = {"feature_branch": "aigentflow/r/feature", "changed": ["src/store.py"], "verdict": "request_changes",
          "task_verdicts": {"T1": "approve", "T2": "approve"},
          "lint": {"tool": "ruff", "ran": True, "detail": "1 finding(s)",
                   "findings": [{"path": "src/cli.py", "line": 7, "code": "F401",
                                 "message": "`os` imported but unused"}]}}
FLAGS = {"platform.genUIOutput": True, "agents.reviewer": True}


def record_run(root: Path, flags: dict[str, Any] | None = None, *, upto: str = "review") -> str:
    """Record a run in the project at ``root``: CREATED -> ... -> ``upto``'s step done; returns its id."""
    paths = ProjectPaths(root)
    store = SQLiteRunStore(paths.database)
    try:
        project = store.get_project()
        assert project is not None, "the project is initialised"
        run = store.create_run(project_id=project["id"], request="Add due dates [red]now[/red]", model="openai/gpt-4o",
                               settings={"model": {"name": "openai/gpt-4o"}}, flags=FLAGS if flags is None else flags)
        run = store.transition(run.id, expected_version=run.version, to_state="PLANNING", return_to=None,
                               event="ADVANCE")
        for state, step, role, output, usage, after in (
                ("PLANNING", "plan", "project_manager", PLAN, StepUsage(1200, 300, 0.0123, 1), "BUILDING"),
                ("BUILDING", "build", "backend_developer", BUILD, StepUsage(5000, 900, 0.05, 4), "REVIEWING"),
                ("REVIEWING", "review", "reviewer", REVIEW, StepUsage(), "COMPLETED")):
            begun = store.begin_step(run.id, step, role, state)
            run = store.complete_step(begun, output=output, usage=usage, artifacts=[], expected_version=run.version,
                                      to_state=after, terminal=after == "COMPLETED")
            if step == upto:
                break
        return run.id
    finally:
        store.close()


def on_terminal(*args: str, cwd: Path, columns: int = 100, env: dict[str, str] | None = None,
                timeout: float = 120, program: list[str] | None = None) -> tuple[int, str, str]:
    """Run the installed `aigentflow` (or ``program``) with its stdout on a pseudo-terminal ``columns``
    wide, as a person at a terminal does; its exit code, what the terminal showed (escape sequences
    removed) and its stderr."""
    import fcntl
    import os
    import pty
    import re
    import struct
    import subprocess
    import tempfile
    import termios
    import time

    from tests.conftest import _bin, cli_env

    main, child_side = pty.openpty()
    fcntl.ioctl(child_side, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    environment = {k: v for k, v in (env or cli_env()).items() if k not in ("NO_COLOR", "COLUMNS", "LINES")}
    environment["TERM"] = "xterm-256color"
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen([*(program or [_bin("aigentflow")]), *args], cwd=cwd, stdin=subprocess.DEVNULL,
                                   stdout=child_side, stderr=errors, env=environment)
        os.close(child_side)
        chunks: list[bytes] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = os.read(main, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        os.close(main)
        code = process.wait(timeout=max(deadline - time.monotonic(), 1))
        errors.seek(0)
        stderr = errors.read().decode("utf-8", errors="replace")
    raw = b"".join(chunks).decode("utf-8", errors="replace")
    return code, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r", "", raw), stderr
