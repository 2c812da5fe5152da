"""The setup and install steps of the CI workflow, per ecosystem, as a clean clone needs them.

A CI runner checks out the commit, so only files tracked by git are there: a lockfile on disk but
not in git cannot be installed from. The package manager is the one ``aigentflow init`` detects,
read from the tracked files:

- JavaScript: npm runs ``npm ci`` only when ``package-lock.json`` (or ``npm-shrinkwrap.json``) is
  tracked, else ``npm install``; pnpm, yarn and bun install with their frozen lockfile when it is
  tracked, else plainly.
- Python: uv runs ``uv sync --locked`` when ``uv.lock`` is tracked, poetry ``poetry install`` when
  ``poetry.lock`` is; the environment they make is put first on PATH for the test step. Everything
  else (pip, hatch, pdm, pipenv, and uv or poetry without a tracked lock) installs with pip.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigentflow.project.ecosystems import Repo, detect_ecosystems, python_dependency_names

PYTHON_MARKERS = ("pyproject.toml", "requirements.txt", "setup.py", "setup.cfg")
PYTHON_EXTRAS = ("test", "tests", "dev")
JS_LOCKS = {"npm": ("package-lock.json", "npm-shrinkwrap.json"), "pnpm": ("pnpm-lock.yaml",),
            "yarn": ("yarn.lock",), "bun": ("bun.lock", "bun.lockb")}
JS_INSTALL = {"npm": ("npm ci", "npm install"), "pnpm": ("pnpm install --frozen-lockfile", "pnpm install"),
              "yarn": ("yarn install --frozen-lockfile", "yarn install"),
              "bun": ("bun install --frozen-lockfile", "bun install")}
PYTHON_LOCKS = {"uv": "uv.lock", "poetry": "poetry.lock"}
LOCKED_PYTHON_INSTALL = {"uv": "uv sync --locked", "poetry": "poetry install"}
VENV_ON_PATH = 'echo "$PWD/.venv/bin" >> "$GITHUB_PATH"'
GIT_TIMEOUT_SECONDS = 60


@dataclass
class Project:
    """What the workflow is written from: the files git tracks and the package managers they say."""

    root: Path
    tracked: Repo
    managers: dict[str, str] = field(default_factory=dict)
    """Ecosystem ("python", "javascript") -> package manager, as `init` detects it from these files."""

    def lock(self, ecosystem: str) -> str | None:
        """The tracked lockfile the ecosystem's package manager installs from, if any."""
        manager = self.managers.get(ecosystem)
        names = JS_LOCKS.get(manager or "", ()) if ecosystem == "javascript" else (PYTHON_LOCKS.get(manager or ""),)
        return next((name for name in names if name and self.tracked.has(name)), None)

    def untracked_lock(self, ecosystem: str) -> tuple[str, str] | None:
        """(a lockfile on disk that git does not track, its package manager): a clean clone lacks it."""
        locks = JS_LOCKS if ecosystem == "javascript" else {m: (lock,) for m, lock in PYTHON_LOCKS.items()}
        return next(((name, manager) for manager, names in locks.items() for name in names
                     if not self.tracked.has(name) and (self.root / name).is_file()), None)


def tracked_files(root: Path) -> dict[str, int]:
    """The regular files git tracks under ``root`` (path -> size); empty outside a git repository."""
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
    try:
        result = subprocess.run(["git", "-c", "core.hooksPath=/dev/null", "-C", str(root), "ls-files", "-z"],
                                capture_output=True, env=env, timeout=GIT_TIMEOUT_SECONDS, check=False)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return {}
    sizes: dict[str, int] = {}
    for raw in result.stdout.split(b"\0") if result.returncode == 0 else ():
        path = raw.decode("utf-8", errors="replace")
        try:
            info = os.lstat(root / path) if path else None
        except OSError:
            continue
        if info is not None and stat.S_ISREG(info.st_mode):
            sizes[path] = info.st_size
    return sizes


def read_project(root: Path) -> Project:
    repo = Repo(root, tracked_files(root))
    managers = {}
    for eco in detect_ecosystems(repo):
        if "Python" in eco.languages and eco.package_manager:
            managers["python"] = eco.package_manager
        if "JavaScript" in eco.languages and eco.package_manager:
            managers["javascript"] = eco.package_manager
    return Project(root, repo, managers)


def ecosystems(root: Path) -> list[str]:
    """The ecosystems whose setup the workflow needs, from the manifests at the root."""
    found = []
    if any((root / marker).is_file() for marker in PYTHON_MARKERS):
        found.append("python")
    if (root / "package.json").is_file():
        found.append("javascript")
    return found


def _pyproject(root: Path) -> dict[str, Any]:
    try:
        return tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _extra(pyproject: dict[str, Any]) -> str | None:
    extras = {**pyproject.get("tool", {}).get("poetry", {}).get("extras", {}),
              **pyproject.get("project", {}).get("optional-dependencies", {})}
    return next((name for name in PYTHON_EXTRAS if name in extras), None)


def _pip_install(root: Path, pyproject: dict[str, Any]) -> list[str]:
    install = ["python -m pip install --upgrade pip"]
    for requirements in ("requirements.txt", "requirements-dev.txt"):
        if (root / requirements).is_file():
            install.append(f"pip install -r {requirements}")
    if "project" in pyproject or "build-system" in pyproject or (root / "setup.py").is_file():
        extra = _extra(pyproject)
        install.append(f'pip install -e ".[{extra}]"' if extra else "pip install -e .")
    return install


def python_steps(project: Project, command: str) -> list[str]:
    """Set up the matrix's Python, install the project with its package manager, and pytest if the
    command runs it and the project does not depend on it."""
    pyproject = _pyproject(project.root)
    manager, lock = project.managers.get("python"), project.lock("python")
    extra = _extra(pyproject)
    uses = ["      - uses: actions/setup-python@v5", "        with:",
            "          python-version: ${{ matrix.python-version }}"]
    needs_pytest = "pytest" in command and "pytest" not in python_dependency_names(project.tracked, pyproject)
    if manager == "uv" and lock:
        uses.append("      - uses: astral-sh/setup-uv@v6")
        install = ["uv sync --locked --python ${{ matrix.python-version }}"
                   + (f" --extra {extra}" if extra else ""), VENV_ON_PATH]
        install += ["uv pip install pytest"] if needs_pytest else []
    elif manager == "poetry" and lock:
        install = ["pipx install poetry", "poetry config virtualenvs.in-project true", "poetry env use python",
                   "poetry install" + (f" --extras {extra}" if extra else ""), VENV_ON_PATH]
        install += ["poetry run pip install pytest"] if needs_pytest else []
    else:
        install = _pip_install(project.root, pyproject) + (["pip install pytest"] if "pytest" in command else [])
    return [*uses, "      - name: Install", "        run: |", *(f"          {line}" for line in install)]


def javascript_steps(project: Project) -> list[str]:
    """Set up node (LTS) and the package manager, and install from the tracked lockfile if there is one."""
    manager = project.managers.get("javascript", "npm")
    locked, plain = JS_INSTALL.get(manager, JS_INSTALL["npm"])
    steps = ["      - uses: actions/setup-node@v4", "        with:", '          node-version: "lts/*"']
    if manager == "pnpm":
        steps += ["      - name: Install pnpm", "        run: npm install -g pnpm"]
    if manager == "bun":
        steps += ["      - uses: oven-sh/setup-bun@v2"]
    return [*steps, "      - name: Install", f"        run: {locked if project.lock('javascript') else plain}"]


def lock_warnings(project: Project, found: list[str]) -> list[str]:
    """A lockfile on disk that git does not track: the workflow cannot install from it."""
    warnings = []
    for ecosystem in found:
        if untracked := project.untracked_lock(ecosystem):
            lock, manager = untracked
            with_it = JS_INSTALL[manager][0] if ecosystem == "javascript" else LOCKED_PYTHON_INSTALL[manager]
            used = project.managers.get(ecosystem, "npm")
            without = "pip" if ecosystem == "python" else f"`{JS_INSTALL.get(used, JS_INSTALL['npm'])[1]}`"
            warnings.append(f"{lock} is not tracked by git, so a clean clone (the CI runner's) lacks it and the "
                            f"workflow installs with {without}; commit it (`git add {lock}`) and run `aigentflow ci "
                            f"init --force` to install from it (`{with_it}`)")
    return warnings
