"""Agent roles, one module each: a plain class made a Ray actor by ``factory.make_actor``.

- ``base.py``: what every role shares (prompt, structured model call, spans).
- ``analyst.py``, ``project_manager.py``, ``architect.py``: the MVP roles.
- ``developer.py``, ``merge_resolver.py``: write a task's code; resolve merge conflicts.
- ``git_agent.py``: every mutation of the user's repository during a run (not a model agent).
- ``workflow.py``: the build step (work-breakdown tasks as parallel Ray tasks in worktrees) and the
  merge step (feature -> integration), run by the Orchestrator.
- ``orchestrator.py``: owns a run; drives it through the state machine with the other actors.
- ``factory.py``: the one place actor options (names, restarts, retries) are set.
"""

from __future__ import annotations

import importlib
from typing import Any

# step name (from the state machine) -> (role, "module:Class")
STEP_AGENTS: dict[str, tuple[str, str]] = {
    "analyze": ("analyst", "actors.analyst:Analyst"),
    "plan": ("project_manager", "actors.project_manager:ProjectManager"),
    "architect": ("architect", "actors.architect:Architect"),
    "build": ("developer", "actors.developer:Developer"),
    "merge": ("git_agent", "actors.git_agent:GitAgent"),
}
WORKFLOW_STEPS = frozenset({"build", "merge"})
"""Steps the Orchestrator runs as workflows (``actors.workflow``) rather than one agent call."""

DETERMINISTIC_ROLES = frozenset({"git_agent"})
"""Roles that call no model (so have no prompt layer): their work is plain code."""

ROLE_CLASSES: dict[str, str] = {
    **{role: path for role, path in STEP_AGENTS.values()},
    "merge_resolver": "actors.merge_resolver:MergeResolver",
}


def agent_class(role: str) -> Any:
    module, name = ROLE_CLASSES[role].split(":")
    return getattr(importlib.import_module(module), name)
