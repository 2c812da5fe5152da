"""`aigentflow ci init` on real layouts: the workflow runs what `ci run` runs, a repository's own
workflows are not joined without a word, and Python is tested on supported versions within the
project's requires-python."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import aigentflow, commit_files, git

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


# What `npm install --package-lock-only` writes for a package without dependencies.
NPM_LOCK = json.dumps({"name": "web", "version": "1.0.0", "lockfileVersion": 3, "requires": True,
                       "packages": {"": {"name": "web", "version": "1.0.0"}}}, indent=2) + "\n"
NODE_PROJECT = {"package.json": json.dumps({"name": "web", "version": "1.0.0", "scripts": {"test": "node --test"}}),
                "test/a.test.js": "const test = require('node:test');\ntest('a', () => {});\n"}


def install_step(repo: Path) -> str:
    return next(step["run"] for step in workflow(repo)["jobs"]["test"]["steps"] if step.get("name") == "Install")


def run_in_a_clean_clone(repo: Path, tmp_path: Path, command: str) -> subprocess.CompletedProcess[str]:
    """``command`` in a fresh clone of ``repo``, as the CI runner has it after actions/checkout."""
    tmp_path.mkdir(exist_ok=True)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    env = {**os.environ, "npm_config_cache": str(tmp_path / "npm-cache"), "npm_config_audit": "false",
           "npm_config_fund": "false", "npm_config_update_notifier": "false"}
    return subprocess.run(command, shell=True, cwd=clone, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


@pytest.mark.parametrize(("lock", "install", "warned"), [
    ("tracked", "npm ci", False),
    ("ignored", "npm install", True),  # on disk but in .gitignore: a clean clone lacks it
    ("none", "npm install", False),
])
def test_npm_ci_only_from_a_lockfile_git_tracks(tmp_path: Path, user_config: Path, lock: str, install: str,
                                                warned: bool) -> None:
    files = dict(NODE_PROJECT)
    if lock == "tracked":
        files["package-lock.json"] = NPM_LOCK
    if lock == "ignored":
        files[".gitignore"] = "node_modules/\npackage-lock.json\n"
    repo = commit_files(tmp_path / "web", files)
    if lock == "ignored":
        (repo / "package-lock.json").write_text(NPM_LOCK)
    assert aigentflow("init", cwd=repo).returncode == 0
    written = aigentflow("ci", "init", cwd=repo)
    assert written.returncode == 0, written.stderr
    assert install_step(repo) == install
    assert ("package-lock.json is not tracked by git" in written.stderr) == warned
    if warned:
        assert "`git add package-lock.json`" in written.stderr and "(`npm ci`)" in written.stderr

    installed = run_in_a_clean_clone(repo, tmp_path, f"{install} && npm test")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    if lock == "ignored":  # what the workflow ran before: npm ci needs the lockfile the clone lacks
        assert run_in_a_clean_clone(repo, tmp_path / "old", "npm ci").returncode != 0


UV_PROJECT = {"pyproject.toml": '[project]\nname = "p"\nversion = "1.0"\nrequires-python = ">=3.11"\n\n'
                                '[dependency-groups]\ndev = ["pytest>=8"]\n',
              "uv.lock": 'version = 1\nrequires-python = ">=3.11"\n'}
POETRY_PROJECT = {"pyproject.toml": '[build-system]\nrequires = ["poetry-core"]\nbuild-backend = '
                                    '"poetry.core.masonry.api"\n\n[tool.poetry]\nname = "p"\nversion = "1.0"\n\n'
                                    '[tool.poetry.dependencies]\n'
                                    'python = "^3.11"\n\n[tool.poetry.extras]\ntest = []\n',
                  "poetry.lock": "# This file is automatically @generated by Poetry\npackage = []\n"}


@pytest.mark.parametrize(("files", "untracked", "uses", "install"), [
    (UV_PROJECT, None, "astral-sh/setup-uv",
     ["uv sync --locked --python ${{ matrix.python-version }}", 'echo "$PWD/.venv/bin" >> "$GITHUB_PATH"']),
    (UV_PROJECT, "uv.lock", None, ["python -m pip install --upgrade pip", "pip install -e .", "pip install pytest"]),
    (POETRY_PROJECT, None, None,
     ["pipx install poetry", "poetry config virtualenvs.in-project true", "poetry env use python",
      "poetry install --extras test", 'echo "$PWD/.venv/bin" >> "$GITHUB_PATH"', "poetry run pip install pytest"]),
    (POETRY_PROJECT, "poetry.lock", None,
     ["python -m pip install --upgrade pip", 'pip install -e ".[test]"', "pip install pytest"]),
    ({"pyproject.toml": '[project]\nname = "p"\nversion = "1.0"\n', "requirements.txt": "attrs\n"}, None, None,
     ["python -m pip install --upgrade pip", "pip install -r requirements.txt", "pip install -e .",
      "pip install pytest"]),
], ids=["uv-locked", "uv-lock-untracked", "poetry-locked", "poetry-lock-untracked", "pip"])
def test_python_installs_with_the_package_manager_of_a_tracked_lockfile(
        tmp_path: Path, user_config: Path, files: dict[str, str], untracked: str | None, uses: str | None,
        install: list[str]) -> None:
    repo = make_project(tmp_path / "project", files)
    if untracked:
        git(repo, "rm", "-q", "--cached", untracked)
        git(repo, "commit", "-q", "-m", f"Stop tracking {untracked}")
    written = aigentflow("ci", "init", cwd=repo)
    assert written.returncode == 0, written.stderr
    steps = workflow(repo)["jobs"]["test"]["steps"]
    assert [s["uses"].split("@")[0] for s in steps if "uses" in s][2:] == ([uses] if uses else [])
    assert install_step(repo).splitlines() == install
    assert (f"{untracked} is not tracked by git" in written.stderr) == bool(untracked)
    if untracked:
        assert f"`git add {untracked}`" in written.stderr
