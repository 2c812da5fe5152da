"""The project's CI: a GitHub Actions workflow running its tests, and the same gate run locally.

``write_workflow`` writes ``.github/workflows/aigentflow.yml`` (tests on push and pull request, with
the setup step of the project's ecosystem). ``run_gate`` runs ``build.ci_command`` (else the test
command) through the sandboxed executor: what ``aigentflow ci run`` does and what the merge step
calls on a scratch worktree.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aigentflow.exceptions import UsageError

if TYPE_CHECKING:
    from aigentflow.sandbox import ExecResult

WORKFLOW = Path(".github") / "workflows" / "aigentflow.yml"
PYTHON_MARKERS = ("pyproject.toml", "requirements.txt", "setup.py", "setup.cfg")
PYTHON_EXTRAS = ("test", "tests", "dev")
HINT_NAMES = 12
NO_TEST_COMMAND = ("no test command is known for this project; set one with "
                   "`aigentflow config set build.test_command \"<command>\"` (e.g. \"python -m pytest\")")


def detected_test_command(root: Path) -> str | None:
    """The test command ``aigentflow init`` detected, from the project's facts in the store."""
    from aigentflow.paths import ProjectPaths
    from aigentflow.store.sqlite import SQLiteRunStore

    paths = ProjectPaths(root)
    if not paths.initialized:
        return None
    store = SQLiteRunStore(paths.database)
    try:
        project = store.get_project() or {}
    finally:
        store.close()
    return project.get("facts", {}).get("test_command") or None


def resolve_test_command(root: Path, settings: Mapping[str, Any]) -> str:
    """``build.test_command``, else the detected one; ``UsageError`` when neither is known."""
    command = str(settings.get("build", {}).get("test_command") or "").strip() or detected_test_command(root)
    if not command:
        raise UsageError(NO_TEST_COMMAND)
    return command


def gate_command(root: Path, settings: Mapping[str, Any]) -> str:
    """The merge gate: ``build.ci_command``, else the test command."""
    return str(settings.get("build", {}).get("ci_command") or "").strip() or resolve_test_command(root, settings)


def run_gate(root: Path, settings: Mapping[str, Any], cwd: Path | None = None) -> ExecResult:
    """Run the gate command in ``cwd`` (default: ``root``) under the build section's sandbox limits."""
    from aigentflow.sandbox import Limits, Sandbox
    from aigentflow.settings import BuildSettings

    command = gate_command(root, settings)
    build = BuildSettings.model_validate(settings.get("build", {}))
    limits = Limits(timeout_s=build.timeout_s, memory_bytes=build.memory_mb * 1024 * 1024,
                    max_processes=build.max_processes, max_output_bytes=build.max_output_kb * 1024)
    return Sandbox(Path(cwd or root), limits=limits, network=build.network,
                   env_passthrough=build.env_passthrough).run(command)


def environment_hint(result: ExecResult, passthrough: list[str]) -> str:
    """For a failed gate: which of the user's variables the command did not get, and how to pass them
    (names only, never a value); "" when it lacked none."""
    from aigentflow.sandbox.env import BUILD_RELEVANT

    lines = []
    if result.env_withheld:
        example = [name for name in result.env_withheld if name in BUILD_RELEVANT] or result.env_withheld[:1]
        wanted = json.dumps([*passthrough, *(name for name in example if name not in passthrough)])
        more = len(result.env_withheld) - HINT_NAMES
        shown = ", ".join(result.env_withheld[:HINT_NAMES]) + (f" and {more} more (--json lists them)" if more > 0 else "")
        lines.append(f"Not passed from your environment (sandboxed commands get an allowlist): {shown}.\n"
                     f"If the command needs some of them, pass them with "
                     f"`aigentflow config set build.env_passthrough '{wanted}'`.")
    if result.env_refused:
        lines.append(f"Refused because the name or value looks secret (never passed): {', '.join(result.env_refused)}.")
    return "\n".join(lines)


def _q(text: str) -> str:
    """A YAML double-quoted scalar (a JSON string is one)."""
    return json.dumps(text)


def _python_version(pyproject: dict[str, Any]) -> str:
    """The lowest Python ``requires-python`` allows, else the newest 3.x."""
    match = re.search(r">=\s*(3\.\d+)", str(pyproject.get("project", {}).get("requires-python", "")))
    return match.group(1) if match else "3.x"


def _python_steps(root: Path, command: str) -> list[str]:
    pyproject: dict[str, Any] = {}
    if (root / "pyproject.toml").is_file():
        try:
            pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            pyproject = {}
    install = ["python -m pip install --upgrade pip"]
    for requirements in ("requirements.txt", "requirements-dev.txt"):
        if (root / requirements).is_file():
            install.append(f"pip install -r {requirements}")
    if "project" in pyproject or "build-system" in pyproject or (root / "setup.py").is_file():
        extras = pyproject.get("project", {}).get("optional-dependencies", {})
        extra = next((name for name in PYTHON_EXTRAS if name in extras), None)
        install.append(f'pip install -e ".[{extra}]"' if extra else "pip install -e .")
    if "pytest" in command:
        install.append("pip install pytest")
    return [
        "      - uses: actions/setup-python@v5",
        "        with:",
        f"          python-version: {_q(_python_version(pyproject))}",
        "      - name: Install",
        "        run: |",
        *(f"          {line}" for line in install),
    ]


def _javascript_steps(root: Path) -> list[str]:
    locked = (root / "package-lock.json").is_file() or (root / "npm-shrinkwrap.json").is_file()
    return [
        "      - uses: actions/setup-node@v4",
        "        with:",
        '          node-version: "lts/*"',
        "      - name: Install",
        f"        run: {'npm ci' if locked else 'npm install'}",
    ]


def ecosystems(root: Path) -> list[str]:
    """The ecosystems whose setup the workflow needs, from the manifests at the root."""
    found = []
    if any((root / marker).is_file() for marker in PYTHON_MARKERS):
        found.append("python")
    if (root / "package.json").is_file():
        found.append("javascript")
    return found


def render_workflow(root: Path, command: str) -> str:
    steps = ["      - uses: actions/checkout@v4"]
    for ecosystem in ecosystems(root):
        steps += _python_steps(root, command) if ecosystem == "python" else _javascript_steps(root)
    steps += ["      - name: Test", f"        run: {_q(command)}"]
    lines = [
        "# Written by `aigentflow ci init`: the project's tests on every push and pull request.",
        "# `aigentflow ci run` runs the same command locally, in aigentflow's sandbox.",
        "name: aigentflow",
        '"on": [push, pull_request]',
        "permissions:",
        "  contents: read",
        "jobs:",
        "  test:",
        "    runs-on: ubuntu-latest",
        "    steps:",
        *steps,
    ]
    return "\n".join(lines) + "\n"


def check_workflow(text: str, command: str) -> None:
    """The workflow parses as YAML and its last step runs ``command`` (skipped without PyYAML)."""
    try:
        import yaml
    except ImportError:
        return
    data = yaml.safe_load(text)
    steps = data["jobs"]["test"]["steps"]
    if data["on"] != ["push", "pull_request"] or steps[-1]["run"] != command:
        raise AssertionError(f"the workflow aigentflow wrote does not run {command!r}:\n{text}")


def write_workflow(root: Path, settings: Mapping[str, Any], *, force: bool = False) -> dict[str, Any]:
    """Write the workflow; refuses to overwrite an existing one unless ``force``."""
    target = root / WORKFLOW
    if target.exists() and not force:
        raise UsageError(f"{target} already exists; run `aigentflow ci init --force` to overwrite it")
    command = resolve_test_command(root, settings)
    text = render_workflow(root, command)
    check_workflow(text, command)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return {"path": str(target), "test_command": command, "ecosystems": ecosystems(root)}
