"""Test results in a structured form: JUnit XML (what pytest, and most runners, can write), not scraped text.

For pytest the sandboxed command gets ``PYTEST_ADDOPTS=--junitxml=<file> --continue-on-collection-errors``
(``junit_env``: a new test module that cannot import yet must not hide the other tests), so the
project's own test command needs no change; other runners are read from a configured report path,
and when no report is written the exit code is the result (``source: exit_code``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

MAX_MESSAGE = 2000
MAX_CASES = 500


def junit_env(report: Path) -> dict[str, str]:
    """Environment that makes pytest write a JUnit report to ``report`` (other runners ignore it)."""
    return {"PYTEST_ADDOPTS": f"--junitxml={report} -o junit_family=xunit1 -p no:cacheprovider "
                              "--continue-on-collection-errors"}


def parse_junit(path: Path) -> dict[str, Any] | None:
    """Totals and each case's outcome from a JUnit XML file; None if there is no readable report."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    cases: list[dict[str, Any]] = []
    for suite in suites:
        for case in suite.iter("testcase"):
            outcome, message = "passed", ""
            for tag in ("failure", "error", "skipped"):
                node = case.find(tag)
                if node is not None:
                    outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                    message = ((node.get("message") or "") + "\n" + (node.text or "")).strip()[:MAX_MESSAGE]
                    break
            cases.append({"id": _case_id(case), "file": case.get("file") or _file_of(case.get("classname", "")),
                          "outcome": outcome, "message": message})
    totals = {k: sum(1 for c in cases if c["outcome"] == k) for k in ("passed", "failed", "error", "skipped")}
    return {"source": "junit", "total": len(cases), **totals, "cases": cases[:MAX_CASES]}


def _case_id(case: ET.Element) -> str:
    return f"{case.get('classname', '')}::{case.get('name', '')}".strip(":")


def _file_of(classname: str) -> str:
    """``tests.test_store.TestX`` -> ``tests/test_store.py`` (pytest's xunit classname), best effort."""
    parts = [p for p in classname.split(".") if p]
    while parts and parts[-1][:1].isupper():
        parts.pop()
    return "/".join(parts) + ".py" if parts else ""


def failing(results: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [c for c in (results or {}).get("cases", []) if c["outcome"] in ("failed", "error")]


def passing_in(results: dict[str, Any] | None, files: set[str]) -> list[str]:
    """Ids of cases from ``files`` that passed (a new test passing before any implementation is a TDD smell)."""
    return [c["id"] for c in (results or {}).get("cases", []) if c["outcome"] == "passed" and c["file"] in files]
