"""The test guard and JUnit reading, on plain text and real pytest reports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aigentflow.checks.testguard import assertion_count, is_test_path, weakening
from aigentflow.checks.testresults import (
    failing,
    junit_env,
    node_major,
    parse_junit,
    passing_in,
    read_reports,
)

BEFORE = "def test_a():\n    assert f() == 1\n    assert g()\n\n\ndef test_b(self):\n    self.assertEqual(h(), 2)\n"


@pytest.mark.parametrize("path, expected", [
    ("tests/test_store.py", True), ("store_test.py", True), ("tests/conftest.py", True),
    ("tests/fixtures/data.json", True), ("src/app.test.ts", True), ("src/store.py", False), ("README.md", False),
])
def test_test_paths(path: str, expected: bool) -> None:
    assert is_test_path(path) is expected


def test_weakening_is_named() -> None:
    assert assertion_count(BEFORE) == 3
    assert weakening("tests/test_x.py", BEFORE, BEFORE.replace("    assert g()\n", "")) == \
        "it removes 1 assertion(s) from a test file"
    assert "skipped" in weakening("tests/test_x.py", BEFORE, "import pytest\n\n@pytest.mark.skip\n" + BEFORE)
    weakened = BEFORE.replace("    assert g()\n", "    pytest.xfail('later')\n    assert g()\n")
    assert "skipped" in weakening("tests/test_x.py", BEFORE, weakened)
    assert weakening("tests/test_x.py", BEFORE, None) == "it deletes a test file"
    assert weakening("tests/test_x.py", BEFORE, BEFORE + "\n\ndef test_c():\n    assert k()\n") is None
    assert weakening("tests/test_x.py", None, "def test_new():\n    pass\n") is None  # a new file
    assert weakening("src/app.py", "x = 1\n", None) is None  # not a test file


def test_a_real_pytest_report_is_read(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_ok.py").write_text("def test_ok():\n    assert 1 == 1\n")
    (tmp_path / "tests" / "test_bad.py").write_text("def test_bad():\n    assert 1 == 2, 'one is not two'\n")
    (tmp_path / "tests" / "test_broken.py").write_text("import not_a_module_here\n")
    reports = tmp_path / "reports"
    reports.mkdir()
    env = {"PATH": "/usr/bin:/bin", **junit_env(reports)}
    subprocess.run([sys.executable, "-m", "pytest", "-q", "tests"], cwd=tmp_path, env=env, capture_output=True,
                   check=False)
    results = read_reports(reports)
    assert results is not None and results["source"] == "junit"
    assert (results["passed"], results["failed"], results["error"]) == (1, 1, 1)  # collection went on past the error
    assert {c["id"] for c in failing(results)} == {"tests.test_bad::test_bad", "tests.test_broken"}
    assert "one is not two" in next(c["message"] for c in failing(results) if c["outcome"] == "failed")
    assert passing_in(results, {"tests/test_ok.py"}) == ["tests.test_ok::test_ok"]


def test_no_report_is_none(tmp_path: Path) -> None:
    assert parse_junit(tmp_path / "missing.xml") is None
    (tmp_path / "bad.xml").write_text("<not closed")
    assert parse_junit(tmp_path / "bad.xml") is None


@pytest.mark.skipif((node_major() or 0) < 20, reason="node 20+ writes JUnit reports through NODE_OPTIONS")
def test_a_real_node_test_runner_report_is_read(tmp_path: Path) -> None:
    (tmp_path / "test").mkdir()
    (tmp_path / "package.json").write_text('{"name": "t", "version": "1.0.0", "scripts": {"test": "node --test"}}')
    (tmp_path / "test" / "a.test.js").write_text(
        "const test = require('node:test');\nconst assert = require('node:assert');\n"
        "test('adds', () => { assert.strictEqual(1 + 1, 2); });\n"
        "test('fails', () => { assert.strictEqual(1 + 1, 3); });\n")
    reports = tmp_path / "reports"
    reports.mkdir()
    import shutil

    run = subprocess.run([shutil.which("npm") or "npm", "test"], cwd=tmp_path, capture_output=True, text=True,
                         env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), **junit_env(reports)}, check=False)
    assert run.returncode != 0 and "fails" in run.stdout  # the usual output is still there
    results = read_reports(reports)
    assert results is not None and (results["source"], results["passed"], results["failed"]) == ("junit", 1, 1)
    [failed] = failing(results)
    assert failed["id"].endswith("::fails") and "2 !== 3" in failed["message"] and failed["file"] == ""
