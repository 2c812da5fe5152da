"""Test results in a structured form: JUnit XML (what pytest, and most runners, can write), not scraped text.

The sandboxed command gets an environment (``junit_env``) that makes the runners it may start write
reports into a directory, so the project's own test command needs no change:

- pytest: ``PYTEST_ADDOPTS=--junitxml=<dir>/pytest.xml --continue-on-collection-errors`` (a new test
  module that cannot import yet must not hide the other tests);
- node's built-in runner (``node --test``, what ``npm test`` runs in many projects), node 20 or newer:
  ``NODE_OPTIONS`` adds a JUnit reporter writing ``<dir>/node.xml`` next to the usual output on stdout.

``read_reports`` takes whichever was written; when none was, the exit code is the result
(``source: exit_code``).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

MAX_MESSAGE = 2000
MAX_CASES = 500
PYTEST_REPORT = "pytest.xml"
NODE_REPORT = "node.xml"
NODE_REPORTER_MIN = 20
"""The node major version whose test runner takes ``--test-reporter`` from NODE_OPTIONS (older nodes
refuse to start with an unknown option there, so it is only set for these)."""


@functools.cache
def node_major() -> int | None:
    """The major version of the ``node`` on PATH, or None."""
    node = shutil.which("node")
    if node is None:
        return None
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10, check=False).stdout
        return int(out.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def junit_env(reports: Path) -> dict[str, str]:
    """Environment that makes pytest and node's test runner write JUnit reports into ``reports``
    (other programs ignore it)."""
    env = {"PYTEST_ADDOPTS": f"--junitxml={reports / PYTEST_REPORT} -o junit_family=xunit1 -p no:cacheprovider "
                             "--continue-on-collection-errors"}
    if (node_major() or 0) >= NODE_REPORTER_MIN:
        env["NODE_OPTIONS"] = ("--test-reporter=spec --test-reporter-destination=stdout --test-reporter=junit "
                               f"--test-reporter-destination={reports / NODE_REPORT}")
    return env


def read_reports(reports: Path) -> dict[str, Any] | None:
    """The results in ``reports`` (pytest's, else node's), or None when the runner wrote none."""
    return parse_junit(reports / PYTEST_REPORT) or parse_junit(reports / NODE_REPORT, files=False)


def parse_junit(path: Path, *, files: bool = True) -> dict[str, Any] | None:
    """Totals and each case's outcome from a JUnit XML file; None if there is no readable report.

    ``files``: derive each case's file from its classname (pytest's xunit1 reports); node's reports
    name no file, so their cases have ``file`` "" (unless the report gives one)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    cases: list[dict[str, Any]] = []
    for case in root.iter("testcase"):  # under <testsuite>s, or (node) straight under <testsuites>
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = ((node.get("message") or "") + "\n" + (node.text or "")).strip()[:MAX_MESSAGE]
                break
        derived = _file_of(case.get("classname", "")) if files else ""
        cases.append({"id": _case_id(case), "file": case.get("file") or derived,
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
