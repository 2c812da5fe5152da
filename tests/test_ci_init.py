"""`aigentflow ci init` on real layouts: the workflow runs what `ci run` runs, a repository's own
workflows are not joined without a word, and Python is tested on supported versions within the
project's requires-python."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import aigentflow, commit_files

OWN_WORKFLOW = "name: tests\non: [push]\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps: [{run: tox}]\n"


def make_project(root: Path, files: dict[str, str]) -> Path:
    commit_files(root, files)
    assert aigentflow("init", cwd=root).returncode == 0
    assert aigentflow("config", "set", "build.test_command", "python -m pytest", cwd=root).returncode == 0
    return root


def workflow(repo: Path) -> dict:
    return yaml.safe_load((repo / ".github" / "workflows" / "aigentflow.yml").read_text())


def test_the_workflow_runs_the_command_ci_run_runs(sample_repo: Path) -> None:
    gate = "test -f pyproject.toml && echo gate-ran"
    assert aigentflow("config", "set", "build.ci_command", gate, cwd=sample_repo).returncode == 0
    written = aigentflow("ci", "init", cwd=sample_repo)
    assert written.returncode == 0, written.stderr
    assert f"runs `{gate}` (build.ci_command, what `aigentflow ci run` runs)" in written.stdout
    data = workflow(sample_repo)
    assert data["jobs"]["test"]["steps"][-1]["run"] == gate
    text = (sample_repo / ".github" / "workflows" / "aigentflow.yml").read_text()
    assert text.startswith(f"# Written by `aigentflow ci init`: runs `{gate}` (build.ci_command)")

    ran = aigentflow("ci", "run", "--json", cwd=sample_repo)
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["command"] == gate and "gate-ran" in report["stdout"]

    assert aigentflow("config", "unset", "build.ci_command", cwd=sample_repo).returncode == 0
    again = json.loads(aigentflow("ci", "init", "--force", "--json", cwd=sample_repo).stdout)
    assert again["command"] == "python -m pytest" and "detected" in again["command_source"]
    assert workflow(sample_repo)["jobs"]["test"]["steps"][-1]["run"] == "python -m pytest"


@pytest.mark.parametrize("name", ["tests.yml", "release.yaml"])
def test_a_repository_with_its_own_workflow_is_refused_unless_forced(tmp_path: Path, user_config: Path,
                                                                     name: str) -> None:
    repo = make_project(tmp_path / "project", {"pyproject.toml": '[project]\nname = "p"\nversion = "1.0"\n',
                                               f".github/workflows/{name}": OWN_WORKFLOW})
    refused = aigentflow("ci", "init", cwd=repo)
    assert refused.returncode == 2
    assert f"already has a workflow of its own in .github/workflows/: {name}" in refused.stderr
    assert "--force" in refused.stderr and "Nothing was written" in refused.stderr
    assert sorted(p.name for p in (repo / ".github" / "workflows").iterdir()) == [name]

    forced = aigentflow("ci", "init", "--force", cwd=repo)
    assert forced.returncode == 0, forced.stderr
    assert f"warning: .github/workflows/ also has {name} (left as it is)" in forced.stderr
    assert sorted(p.name for p in (repo / ".github" / "workflows").iterdir()) == sorted([name, "aigentflow.yml"])
    assert (repo / ".github" / "workflows" / name).read_text() == OWN_WORKFLOW
    report = json.loads(aigentflow("ci", "init", "--force", "--json", cwd=repo).stdout)
    assert report["existing_workflows"] == [name] and report["warnings"]


@pytest.mark.parametrize(("files", "versions", "said"), [
    ({"pyproject.toml": '[project]\nname = "p"\nrequires-python = ">=3.8"\n'},
     ["3.10", "3.11", "3.12", "3.13", "3.14"],
     "requires-python >=3.8 (3.8-3.9, which it also admits, are end of life)"),
    ({"pyproject.toml": '[project]\nname = "p"\nrequires-python = ">=3.11, <3.14"\n'},
     ["3.11", "3.12", "3.13"], "within pyproject.toml requires-python >=3.11, <3.14"),
    ({"pyproject.toml": '[tool.poetry]\nname = "p"\n\n[tool.poetry.dependencies]\npython = "^3.12"\n'},
     ["3.12", "3.13", "3.14"], "within pyproject.toml [tool.poetry.dependencies] python ^3.12"),
    ({"setup.cfg": "[metadata]\nname = p\n\n[options]\npython_requires = >=3.9\n", "setup.py": "setup()\n"},
     ["3.10", "3.11", "3.12", "3.13", "3.14"], "within setup.cfg python_requires >=3.9 (3.9, which"),
    ({"setup.py": "from setuptools import setup\nsetup(name='p')\n"},
     ["3.10", "3.11", "3.12", "3.13", "3.14"], "no requires-python declared: every supported CPython (3.10-3.14)"),
], ids=["floor-3.8", "capped", "poetry", "setup-cfg", "none"])
def test_python_versions_are_the_supported_ones_within_requires_python(tmp_path: Path, user_config: Path,
                                                                       files: dict[str, str], versions: list[str],
                                                                       said: str) -> None:
    repo = make_project(tmp_path / "project", files)
    written = aigentflow("ci", "init", cwd=repo)
    assert written.returncode == 0, written.stderr
    assert f"Python {', '.join(versions)}: " in written.stdout and said in written.stdout
    job = workflow(repo)["jobs"]["test"]
    assert job["strategy"]["matrix"]["python-version"] == versions
    assert job["steps"][1]["with"]["python-version"] == "${{ matrix.python-version }}"


def test_a_range_without_a_supported_python_uses_its_newest(tmp_path: Path, user_config: Path) -> None:
    repo = make_project(tmp_path / "old", {"pyproject.toml": '[project]\nname = "p"\nrequires-python = ">=3.6,<3.9"\n'})
    written = aigentflow("ci", "init", cwd=repo)
    assert written.returncode == 0, written.stderr
    assert "warning: pyproject.toml requires-python >=3.6,<3.9 admits no supported CPython (3.10-3.14): 3.8, the " \
           "newest it admits, which is end of life" in written.stderr
    assert workflow(repo)["jobs"]["test"]["strategy"]["matrix"]["python-version"] == ["3.8"]


@pytest.mark.parametrize(("requires", "words"), [
    ("banana", "pyproject.toml requires-python is 'banana', which is not a version specifier"),
    (">=4", "pyproject.toml requires-python is '>=4', which admits no released CPython"),
])
def test_a_requires_python_that_cannot_be_used_is_refused(tmp_path: Path, user_config: Path, requires: str,
                                                          words: str) -> None:
    repo = make_project(tmp_path / "project", {"pyproject.toml": f'[project]\nname = "p"\nrequires-python = '
                                               f'"{requires}"\n'})
    refused = aigentflow("ci", "init", cwd=repo)
    assert refused.returncode == 2 and words in refused.stderr and "Nothing was written" in refused.stderr
    assert not (repo / ".github").exists()


def test_a_command_naming_this_machine_s_paths_is_pointed_out(sample_repo: Path) -> None:
    command = "/opt/venv/bin/python -m pytest -q"
    assert aigentflow("config", "set", "build.test_command", command, cwd=sample_repo).returncode == 0
    written = aigentflow("ci", "init", cwd=sample_repo)
    assert written.returncode == 0, written.stderr
    assert "warning: `/opt/venv/bin/python -m pytest -q` names /opt/venv/bin/python, which a CI runner will not " \
           "have; set build.test_command" in written.stderr
    assert workflow(sample_repo)["jobs"]["test"]["steps"][-1]["run"] == command
