"""A JavaScript project's tests: which files are tests, which runner the project uses, and its command.

Test files are the usual names (``*.test.js``, ``*.spec.ts``, ``test.js``, ``*-test.js``...) and the
scripts in ``test/``, ``tests/`` and ``__tests__/`` folders, fixtures and helpers left out. The runner
(tape, mocha, jest, vitest, ava, or node's own ``node --test``) is read from ``scripts.test``, following
``npm run <script>`` into the scripts it runs, else from ``devDependencies``; the test command is the
package manager's ``test`` when there is a ``scripts.test``, else the runner run through it.
"""

from __future__ import annotations

import re
import shlex
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aigentflow.project.ecosystems import Repo

JS_SUFFIXES = frozenset({".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".mts", ".cts"})
TEST_FOLDERS = frozenset({"test", "tests", "__tests__"})
NOT_TEST_FOLDERS = frozenset({"fixtures", "fixture", "__fixtures__", "__mocks__", "mocks", "helpers", "support"})
NPM_DEFAULT_TEST_SCRIPT = 'echo "Error: no test specified" && exit 1'
RUNNERS = ("tape", "mocha", "jest", "vitest", "ava")
"""Runners known by the command they install; node's built-in one is ``node --test`` (``node:test``)."""
NODE_RUNNER = "node:test"
_NAMED_TEST = re.compile(r"(?:^|[.\-_])(?:test|spec)s?$|^tests?(?:[-_].+)?$")
_RUN_SCRIPT = re.compile(r"\b(?:npm\s+(?:run(?:-script)?\s+)?|pnpm\s+(?:run\s+)?|yarn\s+(?:run\s+)?|bun\s+run\s+)"
                         r"([A-Za-z0-9:_.-]+)")
_NODE_TEST = re.compile(r"\bnode\b(?:\s+-\S+)*\s+--test(?=\s|$)")
_SCRIPT_DEPTH = 5
_EXEC = {"npm": "npx", "pnpm": "pnpm exec", "yarn": "yarn", "bun": "bunx"}


def is_js_test_file(path: str) -> bool:
    """A JavaScript or TypeScript test: a test-like name, or a script in a test folder (not a fixture)."""
    pure = PurePosixPath(path)
    if pure.suffix not in JS_SUFFIXES or pure.name.endswith((".d.ts", ".d.mts", ".d.cts")):
        return False
    stem = pure.name[: -len(pure.suffix)]
    if _NAMED_TEST.search(stem):
        return True
    folders = pure.parts[:-1]
    if not any(part in TEST_FOLDERS for part in folders):
        return False
    inside = folders[max(i for i, part in enumerate(folders) if part in TEST_FOLDERS) + 1:]
    return not stem.startswith("_") and not any(part in NOT_TEST_FOLDERS for part in inside)


def _scripts(package: dict[str, Any]) -> dict[str, str]:
    scripts = package.get("scripts")
    return {k: v for k, v in scripts.items() if isinstance(v, str)} if isinstance(scripts, dict) else {}


def test_script(package: dict[str, Any]) -> str | None:
    """``scripts.test``, unless it is missing, empty or npm's placeholder that only fails."""
    script = _scripts(package).get("test", "").strip()
    return script if script and script != NPM_DEFAULT_TEST_SCRIPT else None


def _words(script: str) -> list[str]:
    try:
        return shlex.split(script)
    except ValueError:
        return script.split()


def _runner_in(script: str) -> str | None:
    """The first known runner a script line runs (``nyc tape ...``, ``c8 mocha``, ``node --test``)."""
    if _NODE_TEST.search(script):
        return NODE_RUNNER
    for word in _words(script):
        name = PurePosixPath(word).name  # node_modules/.bin/mocha
        if name in RUNNERS:
            return name
    return None


def runner_from_scripts(package: dict[str, Any]) -> str | None:
    """The runner ``scripts.test`` uses, following ``npm run <script>`` into the scripts it names."""
    scripts = _scripts(package)
    pending, seen = ["test"], set()
    while pending and len(seen) < _SCRIPT_DEPTH * 4:
        name = pending.pop(0)
        if name in seen or name not in scripts:
            continue
        seen.add(name)
        if runner := _runner_in(scripts[name]):
            return runner
        pending += [m.group(1) for m in _RUN_SCRIPT.finditer(scripts[name])]
        pending += [m.group(1) for m in re.finditer(r"\brun-[sp]\s+([A-Za-z0-9:_.-]+)", scripts[name])]
    return None


def runner_from_dependencies(package: dict[str, Any]) -> str | None:
    """A runner in ``devDependencies`` (else ``dependencies``), in the order of ``RUNNERS``."""
    for table in ("devDependencies", "dependencies"):
        dependencies = package.get(table)
        if isinstance(dependencies, dict):
            found = next((runner for runner in RUNNERS if runner in dependencies), None)
            if found:
                return found
    return None


def _test_folder(repo: Repo) -> str:
    tests = [path for path in repo.sizes if is_js_test_file(path)]
    for folder in ("test", "tests"):
        if any(path.startswith(f"{folder}/") for path in tests):
            return folder
    return "test"


def _runner_command(repo: Repo, runner: str, manager: str) -> str:
    run = _EXEC.get(manager, "npx")
    if runner == NODE_RUNNER:
        return "node --test"
    if runner == "vitest":
        return f"{run} vitest run"
    if runner == "tape":
        return f"{run} tape '{_test_folder(repo)}/**/*.js'"
    if runner == "mocha" and _test_folder(repo) != "test":
        return f"{run} mocha --recursive {_test_folder(repo)}"
    return f"{run} {runner}"


def javascript_tests(repo: Repo, package: dict[str, Any], manager: str) -> tuple[str | None, str | None, str | None]:
    """(the runner, the test command, where the command came from); each None when not known."""
    script = test_script(package)
    runner = runner_from_scripts(package) if script else None
    runner = runner or runner_from_dependencies(package)
    if script:
        source = "package.json scripts.test" + (f", runs {runner}" if runner else "")
        return runner, f"{manager} test", source
    if runner:
        return runner, _runner_command(repo, runner, manager), f"package.json devDependencies ({runner})"
    return None, None, None
