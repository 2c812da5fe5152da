"""The project's CI: a GitHub Actions workflow running its gate, and the same gate run locally.

The gate is ``build.ci_command``, else ``build.test_command``, else the test command detected at
``aigentflow init``. ``run_gate`` runs it through the sandboxed executor: what ``aigentflow ci run``
does and what the merge step calls on a scratch worktree. ``write_workflow`` writes
``.github/workflows/aigentflow.yml`` running the same command on push and pull request, after the
setup and install steps of the project's ecosystems, as a clean clone needs them (``installs``: ``npm ci``
or ``uv sync --locked`` only from a lockfile git tracks); a Python project is tested on the supported
CPython versions its ``requires-python`` admits (``aigentflow.project.pythons``). It refuses (unless ``force``) when the
project already has workflows of its own, naming them.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aigentflow.checks.installs import ecosystems, javascript_steps, lock_warnings, python_steps, read_project
from aigentflow.exceptions import UsageError
from aigentflow.project.pythons import PythonChoice, choose_pythons

if TYPE_CHECKING:
    from aigentflow.config.settings import BuildSettings
    from aigentflow.sandbox import ExecResult

WORKFLOW = Path(".github") / "workflows" / "aigentflow.yml"
WORKFLOWS_DIR = WORKFLOW.parent
HINT_NAMES = 12
NO_TEST_COMMAND = ("no test command is known for this project; set one with "
                   "`aigentflow config set build.test_command \"<command>\"` (e.g. \"python -m pytest\")")


def detected_test_command(root: Path) -> str | None:
    """The test command ``aigentflow init`` detected, from the project's facts in the store."""
    from aigentflow.project.paths import ProjectPaths
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


def resolve_test_command(root: Path, build: BuildSettings) -> str:
    """``build.test_command``, else the detected one; ``UsageError`` when neither is known."""
    command = build.test_command.strip() or detected_test_command(root)
    if not command:
        raise UsageError(NO_TEST_COMMAND)
    return command


def gate_source(root: Path, build: BuildSettings) -> tuple[str, str]:
    """The merge gate and where it comes from: ``build.ci_command``, else the test command."""
    for key, command in (("ci_command", build.ci_command.strip()), ("test_command", build.test_command.strip())):
        if command:
            return command, f"build.{key}"
    return resolve_test_command(root, build), "the test command `aigentflow init` detected"


def gate_command(root: Path, build: BuildSettings) -> str:
    """The merge gate: ``build.ci_command``, else the test command."""
    return gate_source(root, build)[0]


def run_gate(root: Path, build: BuildSettings, cwd: Path | None = None) -> ExecResult:
    """Run the gate command in ``cwd`` (default: ``root``) under the build section's sandbox limits."""
    from aigentflow.sandbox import Limits, Sandbox

    command = gate_command(root, build)
    limits = Limits(timeout_s=build.timeout_s, memory_bytes=build.memory_mb * 1024 * 1024,
                    max_processes=build.max_processes, max_output_bytes=build.max_output_kb * 1024)
    return Sandbox(Path(cwd or root), limits=limits, network=build.network, env_passthrough=build.env_passthrough,
                   allow_unconfined=build.sandbox_allow_unconfined).run(command)


def unconfined_note(result: ExecResult) -> str:
    """For a command that ran without filesystem confinement (the user opted in): say so ("" otherwise)."""
    if result.isolation.get("filesystem") != "unconfined":
        return ""
    return ("The command ran unconfined (build.sandbox_allow_unconfined = true): it could read your files "
            "and write anywhere you can.")


def environment_hint(result: ExecResult, passthrough: list[str]) -> str:
    """For a failed gate: which of the user's variables the command did not get, and how to pass them
    (names only, never a value); "" when it lacked none."""
    from aigentflow.sandbox.env import BUILD_RELEVANT

    lines = []
    if result.env_withheld:
        example = [name for name in result.env_withheld if name in BUILD_RELEVANT] or result.env_withheld[:1]
        wanted = json.dumps([*passthrough, *(name for name in example if name not in passthrough)])
        more = len(result.env_withheld) - HINT_NAMES
        shown = ", ".join(result.env_withheld[:HINT_NAMES]) + (
            f" and {more} more (--json lists them)" if more > 0 else "")
        lines.append(f"Not passed from your environment (sandboxed commands get an allowlist): {shown}.\n"
                     f"If the command needs some of them, pass them with "
                     f"`aigentflow config set build.env_passthrough '{wanted}'`.")
    if result.env_refused:
        lines.append(f"Refused because the name or value looks secret (never passed): {', '.join(result.env_refused)}.")
    return "\n".join(lines)


def _q(text: str) -> str:
    """A YAML double-quoted scalar (a JSON string is one)."""
    return json.dumps(text)


def _comment(text: str) -> str:
    return " ".join(text.split())


def render_workflow(root: Path, command: str, *, source: str = "build.test_command",
                    pythons: PythonChoice | None = None) -> str:
    """The workflow: ``command`` (from ``source``) after each ecosystem's setup; a Python project's job
    runs once per version in ``pythons`` (default: ``choose_pythons``)."""
    found = ecosystems(root)
    if "python" in found and pythons is None:
        pythons = choose_pythons(root)
    project = read_project(root)
    steps = ["      - uses: actions/checkout@v4"]
    for ecosystem in found:
        steps += python_steps(project, command) if ecosystem == "python" else javascript_steps(project)
    steps += ["      - name: Test", f"        run: {_q(command)}"]
    header = [
        f"# Written by `aigentflow ci init`: runs `{_comment(command)}` ({_comment(source)}) on every push and",
        "# pull request, the same command `aigentflow ci run` runs locally in aigentflow's sandbox.",
    ]
    matrix: list[str] = []
    if "python" in found and pythons is not None:
        header.append(f"# Python {', '.join(pythons.versions)}: {_comment(pythons.reason)}.")
        matrix = ["    strategy:", "      fail-fast: false", "      matrix:",
                  f"        python-version: [{', '.join(_q(v) for v in pythons.versions)}]"]
    lines = [
        *header,
        "name: aigentflow",
        '"on": [push, pull_request]',
        "permissions:",
        "  contents: read",
        "jobs:",
        "  test:",
        "    runs-on: ubuntu-latest",
        *matrix,
        "    steps:",
        *steps,
    ]
    return "\n".join(lines) + "\n"


def check_workflow(text: str, command: str, pythons: list[str] | None = None) -> None:
    """The workflow parses as YAML, its last step runs ``command`` and its matrix is ``pythons``."""
    import yaml

    data = yaml.safe_load(text)
    job = data["jobs"]["test"]
    matrix = job.get("strategy", {}).get("matrix", {}).get("python-version")
    if data["on"] != ["push", "pull_request"] or job["steps"][-1]["run"] != command or matrix != pythons:
        raise AssertionError(f"the workflow aigentflow wrote does not run {command!r} on {pythons}:\n{text}")


def existing_workflows(root: Path) -> list[str]:
    """The project's own workflow files (``.github/workflows/*.yml|*.yaml`` but aigentflow's)."""
    folder = root / WORKFLOWS_DIR
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.suffix in (".yml", ".yaml") and p.is_file() and p.name != WORKFLOW.name)


def machine_paths(command: str) -> list[str]:
    """Absolute paths in ``command``: they name this machine's files, which a CI runner does not have."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    return [w for w in words if w.startswith("/") and not w.startswith("/dev/")]


def _refusal(others: list[str], exists: bool, command: str) -> UsageError:
    parts = []
    if others:
        them = "them" if len(others) > 1 else "it"
        parts.append(f"the project already has {'workflows' if len(others) > 1 else 'a workflow'} of its own in "
                     f"{WORKFLOWS_DIR}/: {', '.join(others)}; {WORKFLOW.name} would run beside {them} on every "
                     "push and pull request")
    if exists:
        parts.append(f"{WORKFLOW} already exists")
    kept = f", leaving {', '.join(others)} as {'they are' if len(others) > 1 else 'it is'}" if others else ""
    return UsageError("; ".join(parts) + ". Nothing was written: run `aigentflow ci init --force` to write "
                      f"{WORKFLOW}{' over the old one' if exists else ''} anyway{kept}"
                      + (f", or make your own workflow run `{command}`" if others else "") + ".")


def write_workflow(root: Path, build: BuildSettings, *, force: bool = False) -> dict[str, Any]:
    """Write the workflow (the gate from the ``build`` settings); refuses (unless ``force``) when it or
    other workflows exist."""
    target = root / WORKFLOW
    command, source = gate_source(root, build)
    others = existing_workflows(root)
    if (others or target.exists()) and not force:
        raise _refusal(others, target.exists(), command)
    pythons = choose_pythons(root) if "python" in ecosystems(root) else None
    text = render_workflow(root, command, source=source, pythons=pythons)
    check_workflow(text, command, pythons.versions if pythons else None)
    warnings = []
    if others:
        they = ("they are", "they run") if len(others) > 1 else ("it is", "it runs")
        warnings.append(f"{WORKFLOWS_DIR}/ also has {', '.join(others)} (left as {they[0]}): {they[1]} on every "
                        f"push and pull request beside {WORKFLOW.name}")
    if pythons and pythons.end_of_life:
        warnings.append(pythons.reason)
    warnings += lock_warnings(read_project(root), ecosystems(root))
    paths = machine_paths(command)
    if paths:
        key = source if source.startswith("build.") else "build.ci_command"
        warnings.append(f"`{command}` names {', '.join(paths)}, which a CI runner will not have; set {key} to a "
                        "command that works in a fresh checkout (e.g. `python -m pytest`) and run `aigentflow ci "
                        "init --force` again")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return {"path": str(target), "command": command, "command_source": source, "ecosystems": ecosystems(root),
            "python": pythons.to_dict() if pythons else None, "existing_workflows": others, "warnings": warnings}
