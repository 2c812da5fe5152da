"""Project facts and snapshots, measured on real git repositories in temporary directories."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import aigentflow
from aigentflow.exceptions import NotAGitRepository
from aigentflow.project.facts import (
    ProjectFacts,
    detect_facts,
    detect_project,
    render_facts,
    snapshot_repository,
)

SAMPLE = Path(aigentflow.__file__).parent / "demo" / "sample"
GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "core.hooksPath=/dev/null", *args], cwd=repo, env=GIT_ENV, check=True,
        capture_output=True,
    )


def committed_repo(path: Path) -> Path:
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def sample_copy(destination: Path) -> Path:
    shutil.copytree(SAMPLE, destination, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    return committed_repo(destination)


def snapshot_paths(root: Path) -> list[str]:
    return [file.path for file in snapshot_repository(root, max_files=10_000).files]


def test_sample_project_facts(tmp_path: Path) -> None:
    repo = sample_copy(tmp_path / "sample")

    facts = detect_facts(repo)

    assert facts.name == "tasks-demo", "the name the manifest declares, not the directory's"
    assert facts.primary_language == "Python"
    assert facts.languages == {"Python": 4}
    assert facts.package_manager == "pip"
    assert facts.test_command == "python -m pytest"
    assert detect_project(repo)[1] == "pyproject.toml [tool.pytest.ini_options]", "where it came from"
    assert "pytest" in facts.frameworks
    assert facts.entry_points == ["tasks"]
    assert facts.has_tests and facts.test_file_count == 1
    assert facts.file_count == 7  # .gitignore, README, pyproject, 3 sources, 1 test file
    assert facts.line_count > 100 and facts.size_bytes > 1000
    assert facts.doc_file_count == 1


def test_facts_hold_no_absolute_paths_and_do_not_depend_on_location(tmp_path: Path) -> None:
    first = detect_facts(sample_copy(tmp_path / "a" / "sample"))
    second = detect_facts(sample_copy(tmp_path / "b" / "deeper" / "sample"))

    dumped = first.model_dump_json()
    assert str(tmp_path) not in dumped
    assert not any(value.startswith("/") for value in first.entry_points)
    assert dumped == second.model_dump_json()
    assert render_facts(first) == render_facts(second)
    assert ProjectFacts.model_validate_json(dumped) == first


def test_render_facts_names_the_essentials(tmp_path: Path) -> None:
    rendered = render_facts(detect_facts(sample_copy(tmp_path / "sample")))

    assert rendered.startswith("## Project: tasks-demo\n")
    for expected in ("Python (4 files)", "pip", "`python -m pytest`", "tasks", "1 test file\n"):
        assert expected in rendered
    assert str(tmp_path) not in rendered


def test_javascript_project(tmp_path: Path) -> None:
    repo = tmp_path / "webapp"
    repo.mkdir()
    package = {
        "name": "webapp",
        "main": "index.js",
        "scripts": {"test": "node index.test.js"},
        "dependencies": {"express": "^4.19.0"},
    }
    (repo / "package.json").write_text(json.dumps(package))
    (repo / "index.js").write_text("module.exports = () => 'hello';\n")
    (repo / "index.test.js").write_text("require('assert').equal(require('./index')(), 'hello');\n")
    committed_repo(repo)

    facts = detect_facts(repo)

    assert facts.languages == {"JavaScript": 2}
    assert facts.primary_language == "JavaScript"
    assert facts.package_manager == "npm"
    assert facts.test_command == "npm test"
    assert detect_project(repo)[1] == "package.json scripts.test"
    assert facts.frameworks == ["express"]
    assert facts.entry_points == ["index.js"]
    assert facts.test_file_count == 1


UNITTEST_CASE = "import unittest\n\nfrom shapes import area\n\n\nclass AreaTest(unittest.TestCase):\n" \
    "    def test_area(self):\n        self.assertEqual(area(2, 3), 6)\n"


def python_project(path: Path, files: dict[str, str]) -> Path:
    """A small Python project with unittest tests, plus ``files`` (its configuration)."""
    path.mkdir(parents=True)
    for name, text in {"shapes/__init__.py": "def area(w, h):\n    return w * h\n",
                       "tests/test_shapes.py": UNITTEST_CASE, "requirements.txt": "", **files}.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    return committed_repo(path)


@pytest.mark.parametrize(("files", "command", "source"), [
    ({"tox.ini": "[tox]\nenvlist = py311\n\n[testenv]\ndeps = -rrequirements.txt\ncommands =\n"
                 "    python -m pip check\n    {envpython} -m unittest discover -s tests {posargs}\n"},
     "python -m unittest discover -s tests", "tox.ini [testenv] commands"),
    ({"Makefile": "PYTHON ?= python3\n\n.PHONY: test\ntest: lint\n\t@$(PYTHON) -m unittest discover -v\n\n"
                  "lint:\n\truff check .\n"},
     "python3 -m unittest discover -v", "Makefile target test"),
    ({"Makefile": "test:\n\tcd tests && $(MAKE) all\n"}, "make test", "Makefile target test"),
    ({"noxfile.py": "import nox\n\n\n@nox.session\ndef tests(session):\n    session.install('.')\n"
                    "    session.run('python', '-m', 'unittest', 'discover', *session.posargs)\n"},
     "python -m unittest discover", "noxfile.py session tests"),
    ({"tox.ini": "[testenv]\ncommands = coverage run -m pytest tests\n"}, "python -m pytest tests",
     "tox.ini [testenv] commands"),
    ({"setup.cfg": "[metadata]\nname = shapes\n\n[tool:pytest]\ntestpaths = tests\n"}, "python -m pytest",
     "setup.cfg [tool:pytest]"),
    ({}, "python -m unittest discover -s tests", "test files (unittest)"),
], ids=["tox-unittest", "makefile-unittest", "makefile-opaque", "nox-unittest", "tox-coverage-pytest",
        "setup-cfg-pytest", "plain-unittest"])
def test_the_test_command_is_the_one_the_projects_configuration_names(
    tmp_path: Path, files: dict[str, str], command: str, source: str
) -> None:
    facts, found_in = detect_project(python_project(tmp_path / "shapes", files))

    assert (facts.test_command, found_in) == (command, source)
    assert ("pytest" in facts.frameworks) == ("pytest" in command)


def test_the_recorded_unittest_command_runs_the_projects_tests(tmp_path: Path) -> None:
    tox = "[testenv]\ncommands = python -m unittest discover -s tests\n"
    repo = python_project(tmp_path / "shapes", {"tox.ini": tox})
    command = detect_facts(repo).test_command
    assert command is not None
    ran = subprocess.run([sys.executable, *command.split()[1:]], cwd=repo, capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, check=False)
    assert ran.returncode == 0 and "Ran 1 test" in ran.stderr, ran.stderr


def test_ignored_files_and_aigentflow_state_are_left_out(tmp_path: Path) -> None:
    repo = sample_copy(tmp_path / "sample")
    before = detect_facts(repo)
    (repo / "tasks.json").write_text("[]\n")  # ignored by the sample's .gitignore
    (repo / "src" / "tasks_demo" / "__pycache__").mkdir()
    (repo / "src" / "tasks_demo" / "__pycache__" / "store.cpython-311.pyc").write_bytes(b"\0" * 64)
    (repo / ".aigentflow" / "runs").mkdir(parents=True)
    (repo / ".aigentflow" / "runs" / "plan.py").write_text("print('state, not project')\n")
    (repo / ".aigentflow" / "config.toml").write_text("[model]\n")
    (repo / "notes.py").write_text("# untracked but not ignored\n")

    after = detect_facts(repo)
    paths = snapshot_paths(repo)

    assert "notes.py" in paths
    assert not any(path.startswith(".aigentflow") for path in paths)
    assert "tasks.json" not in paths and not any("__pycache__" in path for path in paths)
    assert after.file_count == before.file_count + 1
    assert after.languages == {"Python": 5}


def test_binary_and_huge_files_count_by_size_only(tmp_path: Path) -> None:
    repo = sample_copy(tmp_path / "sample")
    before = detect_facts(repo)
    (repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\n\n\n" * 100)
    (repo / "big.txt").write_text("line\n" * 250_000)  # 1.25 MB: over the line-counting limit

    after = detect_facts(repo)

    assert after.file_count == before.file_count + 2
    assert after.size_bytes == before.size_bytes + 1300 + 1_250_000
    assert after.line_count == before.line_count


def test_empty_repository(tmp_path: Path) -> None:
    repo = tmp_path / "empty"
    repo.mkdir()
    git(repo, "init", "-q")

    facts = detect_facts(repo)
    snapshot = snapshot_repository(repo)

    assert facts == ProjectFacts(name="empty")
    assert facts.file_count == facts.line_count == facts.size_bytes == 0
    assert facts.primary_language is None and facts.test_command is None and not facts.has_tests
    assert "none detected" in render_facts(facts)
    assert snapshot.files == [] and snapshot.key_files == {} and not snapshot.truncated


def test_outside_a_git_repository(tmp_path: Path) -> None:
    with pytest.raises(NotAGitRepository, match="git init"):
        detect_facts(tmp_path)


def test_snapshot_lists_files_and_key_files(tmp_path: Path) -> None:
    repo = sample_copy(tmp_path / "sample")

    snapshot = snapshot_repository(repo)

    assert snapshot.total_files == 7 and not snapshot.truncated
    assert [file.path for file in snapshot.files] == sorted(file.path for file in snapshot.files)
    store = next(file for file in snapshot.files if file.path == "src/tasks_demo/store.py")
    assert store.size == (repo / store.path).stat().st_size
    assert store.lines == len((repo / store.path).read_text().splitlines())
    assert sorted(snapshot.key_files) == ["README.md", "pyproject.toml", "src/tasks_demo/cli.py"]
    assert snapshot.key_files["pyproject.toml"] == (repo / "pyproject.toml").read_text()
    assert str(tmp_path) not in snapshot.model_dump_json()


def test_snapshot_caps_files_and_truncates_key_files(tmp_path: Path) -> None:
    repo = sample_copy(tmp_path / "sample")

    snapshot = snapshot_repository(repo, max_files=3, max_key_file_bytes=40)

    assert snapshot.truncated and snapshot.total_files == 7
    assert len(snapshot.files) == 3
    # The shallowest paths are kept, so the capped list still shows the project's top level.
    assert [file.path for file in snapshot.files] == [".gitignore", "README.md", "pyproject.toml"]
    assert all(len(text.encode()) <= 40 for text in snapshot.key_files.values())
    assert snapshot.key_files["pyproject.toml"] == (repo / "pyproject.toml").read_text()[:40]
    assert sorted(snapshot.truncated_key_files) == sorted(snapshot.key_files)


def test_sample_projects_own_tests_pass(tmp_path: Path) -> None:
    repo = sample_copy(tmp_path / "sample")

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=repo, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 passed" in result.stdout
