"""The Reviewer's deterministic half: the project's linters on the files a change touched.

Python files go through ruff (``python -m ruff check --output-format json``), run in the sandbox in
the task's worktree, so the project's own ruff configuration (pyproject.toml, ruff.toml) applies.
Findings come back anchored to file and line. No Ray or model imports here.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

MAX_FINDINGS = 200


def lint(root: Path, paths: list[str], limits: dict[str, Any]) -> dict[str, Any]:
    """Lint ``paths`` (relative to ``root``); {"tool", "findings": [{path, line, code, message}], "ran"}."""
    from aigentflow.checks.build import run_in_sandbox

    python = sorted(p for p in paths if p.endswith(".py") and (Path(root) / p).is_file())
    if not python:
        return {"tool": "ruff", "ran": False, "findings": [], "detail": "no Python files changed"}
    command = shlex.join([sys.executable, "-m", "ruff", "check", "--output-format", "json", "--no-cache",
                          "--exit-zero", "--", *python])
    result = run_in_sandbox(Path(root), command, limits)
    try:
        raw = json.loads(result.get("stdout") or "[]")
    except json.JSONDecodeError:
        return {"tool": "ruff", "ran": False, "findings": [],
                "detail": f"ruff did not report: {result.get('summary')}: {(result.get('stderr') or '')[-500:]}"}
    root_text = str(Path(root).resolve())
    findings = [{"path": str(Path(item["filename"]).resolve()).removeprefix(root_text).lstrip("/"),
                 "line": (item.get("location") or {}).get("row", 0), "code": item.get("code") or "",
                 "message": item.get("message", "")} for item in raw[:MAX_FINDINGS]]
    return {"tool": "ruff", "ran": True, "findings": findings, "detail": f"{len(findings)} finding(s)",
            "duration_s": result.get("duration_s")}
