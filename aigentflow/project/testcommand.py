"""A Python project's test command, from what its own configuration names, and where it came from.

In order: a command running a test runner that the project writes down (a Makefile ``test`` target,
tox.ini's ``commands``, a noxfile ``tests`` session, a hatch or pdm ``test`` script); else pytest's
own configuration (``[tool.pytest.ini_options]``, pytest.ini, ...); else ``make test``; else a
pytest dependency; else what the test files import (unittest or pytest).

A command behind ``coverage run -m`` is recorded without it (aigentflow measures coverage itself).
"""

from __future__ import annotations

import ast
import configparser
import re
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aigentflow.project.ecosystems import Repo

Found = tuple[str, str]
"""(command, where it came from: "tox.ini", "Makefile target test", ...)."""

RUNNER = re.compile(
    r"^(?:\S*python[0-9.]*\s+(?:-\S+\s+)*-m\s+(?:pytest|unittest|nose2|twisted\.trial|xmlrunner)\b"
    r"|(?:\S*/)?(?:pytest|py\.test|nose2|trial)\b|\S*python[0-9.]*\s+(?:\S*/)?manage\.py\s+test\b)"
)
_COVERAGE = re.compile(r"^(?:\S*python[0-9.]*\s+-m\s+)?coverage\s+run\b.*?\s-m\s+(?P<rest>\S.*)$")
_TOX_SUBSTITUTIONS = ((re.compile(r"\{envpython\}"), "python"), (re.compile(r"\{envbindir\}/"), ""),
                      (re.compile(r"\{toxinidir\}/?"), "./"), (re.compile(r"\{posargs:([^{}]*)\}"), r"\1"),
                      (re.compile(r"\{posargs\}"), ""))  # fmt: skip
_MAKE_TARGETS = ("test", "tests")
_MAKE_VARIABLE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(?:\?|:|::)?=\s*(.*)$")
_MAKE_REFERENCE = re.compile(r"\$[({]([A-Za-z_][A-Za-z0-9_]*)[)}]")
_UNITTEST_IMPORT = re.compile(r"^\s*(?:import\s+unittest\b|from\s+unittest\b)", re.MULTILINE)
_PYTEST_MENTION = re.compile(r"^\s*(?:import\s+pytest\b|from\s+pytest\b|@pytest\b)", re.MULTILINE)


def runner_command(line: str) -> str | None:
    """``line`` if it runs a test runner (a coverage wrapper removed), else None."""
    line = " ".join(line.split())
    if wrapped := _COVERAGE.match(line):
        line = f"python -m {wrapped.group('rest')}"
    return line if RUNNER.match(line) else None


def _tox(repo: Repo) -> Found | None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(repo.text("tox.ini"))
    except configparser.Error:
        return None
    sections = sorted((s for s in parser.sections() if s == "testenv" or s.startswith("testenv:")),
                      key=lambda s: (s != "testenv", s))  # fmt: skip
    for section in sections:
        for raw in parser.get(section, "commands", fallback="").replace("\\\n", " ").splitlines():
            line = raw.strip().lstrip("-!").strip()
            for pattern, replacement in _TOX_SUBSTITUTIONS:
                line = pattern.sub(replacement, line)
            if line and "{" not in line and (command := runner_command(line)):
                return command, f"tox.ini [{section}] commands"
    return None


def _make_recipe(repo: Repo) -> tuple[str, list[str]] | None:
    """(the target, its recipe's lines, make variables expanded where they are simple)."""
    lines = repo.text("Makefile").replace("\\\n", " ").splitlines()
    variables = {m.group(1): m.group(2).strip() for line in lines if (m := _MAKE_VARIABLE.match(line))}
    for target in _MAKE_TARGETS:
        heading = re.compile(rf"^(?:[^:=#\s]+\s+)*{target}(?:\s+[^:=#\s]+)*\s*::?(?!=)")
        for number, line in enumerate(lines):
            if heading.match(line):
                recipe = []
                for raw in lines[number + 1 :]:
                    if not raw.startswith("\t"):
                        break
                    step = raw.strip().lstrip("@-+").strip()
                    expanded = _MAKE_REFERENCE.sub(lambda m: variables.get(m.group(1), m.group(0)), step)
                    if step and not step.startswith("#"):
                        recipe.append(expanded)
                return target, recipe
    return None


def _makefile(repo: Repo) -> Found | None:
    found = _make_recipe(repo)
    if found is None:
        return None
    target, recipe = found
    command = next((c for step in recipe if "$" not in step and (c := runner_command(step))), None)
    return (command, f"Makefile target {target}") if command else None


def _nox(repo: Repo) -> Found | None:
    try:
        tree = ast.parse(repo.text("noxfile.py"))
    except (SyntaxError, ValueError):
        return None
    for function in (node for node in tree.body if isinstance(node, ast.FunctionDef)):
        if function.name not in ("test", "tests"):
            continue
        for call in (node for node in ast.walk(function) if isinstance(node, ast.Call)):
            if not (isinstance(call.func, ast.Attribute) and call.func.attr == "run"):
                continue
            words = [arg.value for arg in call.args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
            if words and (command := runner_command(" ".join(words))):
                return command, f"noxfile.py session {function.name}"
    return None


def _scripts(pyproject: dict[str, Any]) -> Found | None:
    tool = pyproject.get("tool", {})
    tables = (("hatch", tool.get("hatch", {}).get("envs", {}).get("default", {}).get("scripts", {})),
              ("pdm", tool.get("pdm", {}).get("scripts", {})))  # fmt: skip
    for manager, scripts in tables:
        script = scripts.get("test") if isinstance(scripts, dict) else None
        if isinstance(script, dict):
            script = script.get("cmd") or script.get("shell")
        if isinstance(script, list):
            script = " ".join(str(word) for word in script)
        if isinstance(script, str) and (command := runner_command(script.replace("{args}", ""))):
            return command, f"pyproject.toml [tool.{manager}] script test"
    return None


def _pytest_config(repo: Repo, pyproject: dict[str, Any]) -> str | None:
    """Where pytest's own configuration is, if the project has one."""
    if "pytest" in pyproject.get("tool", {}):
        return "pyproject.toml [tool.pytest.ini_options]"
    for path, marker in (("pytest.ini", ""), ("tox.ini", "[pytest]"), ("setup.cfg", "[tool:pytest]")):
        if repo.has(path) and marker in repo.text(path):
            return f"{path} {marker}".strip()
    return "conftest.py" if repo.has("conftest.py") else None


def _is_python_test(path: str) -> bool:
    name = PurePosixPath(path).name
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def _from_test_files(repo: Repo) -> Found | None:
    """unittest when the tests import it and nothing of pytest; pytest for tests under tests/."""
    tests = [path for path in repo.sizes if _is_python_test(path)]
    if not tests:
        return None
    texts = [repo.text(path) for path in tests]
    if any(_UNITTEST_IMPORT.search(text) for text in texts) and not any(_PYTEST_MENTION.search(t) for t in texts):
        folders = {PurePosixPath(path).parts[0] for path in tests if "/" in path}
        if folders == {"tests"} and not repo.has("tests/__init__.py"):
            return "python -m unittest discover -s tests", "test files (unittest)"
        return "python -m unittest discover", "test files (unittest)"
    if any(PurePosixPath(path).parts[0] in ("tests", "test") for path in tests):
        return "python -m pytest", "test files (tests/)"
    return None


def python_test_command(repo: Repo, pyproject: dict[str, Any], dependencies: set[str]) -> Found | None:
    """The project's test command and where it came from; None when nothing says how to test it."""
    for named in (_makefile(repo), _tox(repo), _nox(repo), _scripts(pyproject)):
        if named:
            return named
    if where := _pytest_config(repo, pyproject):
        return "python -m pytest", where
    if (recipe := _make_recipe(repo)) and recipe[1]:
        return f"make {recipe[0]}", f"Makefile target {recipe[0]}"
    if "pytest" in dependencies:
        return "python -m pytest", "dependencies (pytest)"
    return _from_test_files(repo)
