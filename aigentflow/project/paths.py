"""Where aigentflow keeps things: the project's ``.aigentflow/`` directory and the user's config."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from aigentflow.exceptions import NotAGitRepository, NotInitialized

STATE_DIRNAME = ".aigentflow"


def find_git_root(start: Path) -> Path | None:
    """The top of the git work tree containing ``start``, without running git."""
    current = start.resolve()
    for candidate in (current, *current.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def user_config_dir() -> Path:
    """``$AIGENTFLOW_CONFIG_HOME``, else ``$XDG_CONFIG_HOME/aigentflow``, else ``~/.config/aigentflow``."""
    explicit = os.environ.get("AIGENTFLOW_CONFIG_HOME")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg else Path.home() / ".config"
    return base / "aigentflow"


@dataclass(frozen=True)
class ProjectPaths:
    """The files of one initialised project."""

    root: Path

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIRNAME

    @property
    def config_file(self) -> Path:
        return self.state_dir / "config.toml"

    @property
    def database(self) -> Path:
        return self.state_dir / "state.db"

    @property
    def runs_dir(self) -> Path:
        return self.state_dir / "runs"

    @property
    def traces_dir(self) -> Path:
        return self.state_dir / "traces"

    @property
    def prompts_dir(self) -> Path:
        """Per-project prompt layer overrides, same relative paths as the shipped layers."""
        return self.state_dir / "prompts"

    @property
    def agents_dir(self) -> Path:
        """The project's own versions of roles: ``<role>/<version>.toml|json`` (and their prompt layers)."""
        return self.state_dir / "agents"

    @property
    def cassettes_dir(self) -> Path:
        return self.state_dir / "cassettes"

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    @property
    def initialized(self) -> bool:
        return self.database.exists()


def locate_project(start: Path | None = None, *, must_exist: bool = True) -> ProjectPaths:
    """The project containing ``start`` (default: the working directory).

    Raises ``NotAGitRepository`` outside a git work tree, and, with ``must_exist``,
    ``NotInitialized`` when ``aigentflow init`` has not been run there.
    """
    start = Path(start or Path.cwd())
    root = find_git_root(start)
    if root is None:
        raise NotAGitRepository(
            f"{start.resolve()} is not inside a git repository. Run `git init` first, or "
            "`aigentflow init --git-init` to create one."
        )
    paths = ProjectPaths(root)
    if must_exist and not paths.initialized:
        raise NotInitialized(
            f"{root} has no aigentflow state yet ({paths.database} is missing). "
            "Run `aigentflow init` there first."
        )
    return paths
