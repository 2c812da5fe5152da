"""`aigentflow init` on real layouts: .aigentflow/ kept out of git status through .git/info/exclude,
and the test command the project's own configuration names (a unittest project), used by `ci run`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aigentflow.checks.build import limits_from_settings, run_in_sandbox
from aigentflow.config.settings import BuildSettings
from tests.conftest import aigentflow, cli_env

EXCLUDE_LINE = "/.aigentflow/"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=u", "-c", "user.email=u@x", "-c", "core.hooksPath=/dev/null",
                           *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path, user_config: Path) -> Path:
    path = tmp_path / "app"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    (path / "app.py").write_text("print('hi')\n")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "app")
    return path


def exclude_lines(repo: Path) -> list[str]:
    return (repo / ".git" / "info" / "exclude").read_text().splitlines()


def test_init_keeps_its_state_out_of_git_status_without_touching_gitignore(repo: Path) -> None:
    first = aigentflow("init", cwd=repo)
    assert first.returncode == 0, first.stderr
    assert ".aigentflow/ added to .git/info/exclude (not .gitignore)" in first.stdout
    assert git(repo, "status", "--porcelain") == "", "git status stays clean"
    assert not (repo / ".gitignore").exists()

    again = aigentflow("init", cwd=repo)
    assert again.returncode == 0 and ".aigentflow/ is in .git/info/exclude" in again.stdout
    assert exclude_lines(repo).count(EXCLUDE_LINE) == 1, "added once"

    visible = aigentflow("init", "--no-exclude", cwd=repo)
    assert visible.returncode == 0 and "removed from .git/info/exclude" in visible.stdout
    assert git(repo, "status", "--porcelain") == "?? .aigentflow/\n"
    remembered = aigentflow("init", cwd=repo)
    assert "stays visible to git (you chose --no-exclude" in remembered.stdout
    assert git(repo, "status", "--porcelain") == "?? .aigentflow/\n", "a later init keeps the user's choice"

    assert "added to .git/info/exclude" in aigentflow("init", "--exclude", cwd=repo).stdout
    assert git(repo, "status", "--porcelain") == "" and exclude_lines(repo).count(EXCLUDE_LINE) == 1


def test_init_in_a_linked_worktree_writes_the_repositorys_shared_exclude(repo: Path, tmp_path: Path) -> None:
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", str(linked), "-b", "side")
    result = aigentflow("init", cwd=linked)
    assert result.returncode == 0, result.stderr
    assert f"added to {repo / '.git' / 'info' / 'exclude'}" in result.stdout
    assert EXCLUDE_LINE in exclude_lines(repo)
    assert git(linked, "status", "--porcelain") == ""


def test_init_leaves_a_state_directory_the_user_tracks_alone(repo: Path) -> None:
    (repo / ".aigentflow").mkdir()
    (repo / ".aigentflow" / "config.toml").write_text('[build]\ntest_command = "true"\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "aigentflow config")
    result = aigentflow("init", cwd=repo)
    assert result.returncode == 0, result.stderr
    assert ".aigentflow/ has files tracked in git: not added to info/exclude" in result.stdout
    assert EXCLUDE_LINE not in exclude_lines(repo)


def test_init_outside_a_repository_with_git_init_excludes_too(tmp_path: Path, user_config: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    result = aigentflow("init", "--git-init", cwd=plain)
    assert result.returncode == 0, result.stderr
    assert EXCLUDE_LINE in exclude_lines(plain) and git(plain, "status", "--porcelain") == ""


# -- a unittest project ------------------------------------------------------------------------------

UNITTEST_CASE = """import unittest

from shapes import area


class AreaTest(unittest.TestCase):
    def test_area(self):
        self.assertEqual(area(2, 3), 6)
"""
TOX = """[tox]
envlist = py311

[testenv]
commands =
    python -m pip check
    python -m unittest discover -s tests -t . {posargs}
"""


@pytest.fixture
def unittest_project(tmp_path: Path, user_config: Path) -> Path:
    path = tmp_path / "shapes"
    (path / "shapes").mkdir(parents=True)
    (path / "tests").mkdir()
    (path / "shapes" / "__init__.py").write_text("def area(w, h):\n    return w * h\n")
    (path / "tests" / "__init__.py").write_text("")
    (path / "tests" / "test_shapes.py").write_text(UNITTEST_CASE)
    (path / "tox.ini").write_text(TOX)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "shapes")
    return path


def test_a_unittest_project_records_unittest_and_its_results_come_back(unittest_project: Path) -> None:
    # `python` is the interpreter running these tests, as in an activated virtualenv
    env = cli_env(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    init = aigentflow("init", cwd=unittest_project, env=env)
    assert init.returncode == 0, init.stderr
    assert "test command:    python -m unittest discover -s tests -t . (from tox.ini [testenv] commands)" in init.stdout

    passed = aigentflow("ci", "run", cwd=unittest_project, env=env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "CI gate passed: `python -m unittest discover -s tests -t .` exited 0" in passed.stdout

    test_file = unittest_project / "tests" / "test_shapes.py"
    test_file.write_text(UNITTEST_CASE.replace("6)", "7)"))
    failed = aigentflow("ci", "run", cwd=unittest_project, env=env)
    assert failed.returncode == 1 and "FAILED (failures=1)" in failed.stderr and "6 != 7" in failed.stderr

    # What a build task's tests record (the Tester and the Bug Fixer read it): no JUnit report from
    # unittest, so the result is the exit code and the fixer gets the output.
    record = run_in_sandbox(unittest_project, f"{sys.executable} -m unittest discover -s tests -t .",
                            limits_from_settings(BuildSettings()))
    assert record["ok"] is False and record["results"] == {"source": "exit_code", "exit_code": 1}
    assert "6 != 7" in record["stderr"]
