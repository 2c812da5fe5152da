"""Coverage of what a task changed: coverage.py for Python projects, a configured command for others.

A Python test command (``python -m pytest ...``, ``pytest ...``) is run as ``python -m coverage run
-m pytest ...`` with the same interpreter, in the sandbox, then ``coverage json`` gives per-file
executed and missing lines. Another project configures ``build.coverage_command``, which must write a
coverage.py-format JSON report to ``{report}``. The changed lines come from ``git diff -U0``; a task
whose changed executable lines are covered below ``build.coverage_threshold`` fails. No Ray or model
imports here.
"""

from __future__ import annotations

import json
import re
import shlex
import tempfile
from pathlib import Path
from typing import Any

_PYTEST = re.compile(r"^\s*(?:(?P<python>\S*python[0-9.]*)\s+-m\s+pytest|pytest)(?P<rest>(?:\s.*)?)$")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


def coverage_commands(test_command: str, configured: str, data_dir: Path) -> tuple[str, str | None] | None:
    """(run, report) commands writing ``data_dir/coverage.json``; None when coverage cannot be measured."""
    report = data_dir / "coverage.json"
    if configured:
        return configured.replace("{report}", shlex.quote(str(report))), None
    match = _PYTEST.match(test_command)
    if not match:
        return None
    python = match.group("python") or "python3"
    data = shlex.quote(str(data_dir / ".coverage"))
    run = f"{python} -m coverage run --data-file={data} -m pytest{match.group('rest') or ''}"
    return run, f"{python} -m coverage json -q --data-file={data} -o {shlex.quote(str(report))}"


def coverage_method(test_command: str, configured: str) -> str:
    """How coverage is measured for this project, in words (the Project Analyzer reports it)."""
    if configured:
        return f"`{configured}` (build.coverage_command)"
    if test_command and _PYTEST.match(test_command):
        return f"coverage.py around `{test_command}`"
    return "not measurable: set build.coverage_command"


def changed_lines(diff_u0: str) -> dict[str, set[int]]:
    """Added or changed line numbers per file, from ``git diff -U0`` output."""
    lines: dict[str, set[int]] = {}
    path: str | None = None
    for line in diff_u0.splitlines():
        if line.startswith("+++ "):
            target = line[4:]
            path = target[2:] if target.startswith("b/") else None
        elif path and (hunk := _HUNK.match(line)):
            start, count = int(hunk.group(1)), int(hunk.group(2) or 1)
            lines.setdefault(path, set()).update(range(start, start + count))
    return {p: s for p, s in lines.items() if s}


def summarise(report: dict[str, Any], changed: dict[str, set[int]]) -> dict[str, Any]:
    """Total coverage and the coverage of the changed executable lines (``percent`` None: none changed).

    Test files do not count: their coverage says nothing about the code's."""
    from aigentflow.checks.testguard import is_test_path

    files = report.get("files", {})
    covered = total = 0
    uncovered: dict[str, list[int]] = {}
    for path, wanted in sorted(changed.items()):
        if is_test_path(path):
            continue
        data = files.get(path) or files.get(f"./{path}")
        if not data:
            continue
        executed, missing = set(data.get("executed_lines", [])), set(data.get("missing_lines", []))
        executable = (executed | missing) & wanted
        total += len(executable)
        covered += len(executable & executed)
        if executable - executed:
            uncovered[path] = sorted(executable - executed)
    totals = report.get("totals", {})
    return {"total_percent": round(float(totals.get("percent_covered", 0.0)), 2),
            "changed_lines": total, "changed_covered": covered,
            "changed_percent": round(100.0 * covered / total, 2) if total else None, "uncovered": uncovered}


def measure(root: Path, test_command: str, configured: str, limits: dict[str, Any], diff_u0: str) -> dict[str, Any]:
    """Run the tests under coverage in ``root`` (sandboxed); the summary, or why nothing was measured."""
    from aigentflow.checks.build import run_in_sandbox

    with tempfile.TemporaryDirectory(prefix="af-cov-") as tmp:
        commands = coverage_commands(test_command, configured, Path(tmp))
        if commands is None:
            return {"measured": False, "detail": f"no way to measure coverage for `{test_command}`; set "
                                                 "build.coverage_command (it writes a coverage.py JSON to {report})"}
        run, report_command = commands
        ran = run_in_sandbox(root, run, limits, writable=(Path(tmp),))
        seconds = float(ran.get("duration_s") or 0.0)
        if report_command:
            reported = run_in_sandbox(root, report_command, limits, writable=(Path(tmp),))
            seconds += float(reported.get("duration_s") or 0.0)
            if not reported["ok"]:
                return {"measured": False, "detail": "coverage.py could not report (is it installed for the "
                        f"project's Python? `pip install coverage`): {(reported.get('stderr') or '')[-300:]}"}
        try:
            data = json.loads((Path(tmp) / "coverage.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            return {"measured": False, "detail": f"no coverage report was written ({exc}): {ran['summary']}"}
    return {"measured": True, "tests_ok": ran["ok"], "duration_s": round(seconds, 3),
            **summarise(data, changed_lines(diff_u0))}
