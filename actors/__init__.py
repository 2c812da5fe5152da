"""Agent roles, one module each: a plain class made a Ray actor by ``factory.make_actor``.

- ``base.py``: what every role shares (prompt, structured model call, spans).
- ``analyst.py``, ``project_manager.py``, ``architect.py``: the MVP roles.
- ``developer.py`` (Backend and Frontend Developer), ``tester.py`` (tests first), ``bug_fixer.py`` (the
  fix loop), ``merge_resolver.py``: the roles of the build step.
- ``git_agent.py``: every mutation of the user's repository during a run (not a model agent).
- ``workflow/``: the steps the Orchestrator runs as workflows: BUILDING (``build.py``: work-breakdown
  tasks in parallel worktrees), and ANALYZING with the Project Analyzer, TESTING, REVIEWING and MERGING
  (``stages.py``).
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
    "design": ("ui_designer", "actors.ui_designer:UIDesigner"),
    "build": ("backend_developer", "actors.developer:BackendDeveloper"),
    "test": ("tester", "actors.tester:Tester"),
    "fix": ("bug_fixer", "actors.bug_fixer:BugFixer"),
    "review": ("reviewer", "actors.reviewer:Reviewer"),
    "merge": ("git_agent", "actors.git_agent:GitAgent"),
}
WORKFLOW_STEPS = frozenset({"build", "test", "fix", "review", "merge"})
"""Steps the Orchestrator runs as workflows (``actors.workflow``) rather than one agent call."""

DETERMINISTIC_ROLES = frozenset({"git_agent"})
"""Roles that call no model (so have no prompt layer): their work is plain code."""

ROLE_CLASSES: dict[str, str] = {
    **dict(STEP_AGENTS.values()),
    "frontend_developer": "actors.developer:FrontendDeveloper",
    "project_analyzer": "actors.project_analyzer:ProjectAnalyzer",
    "merge_resolver": "actors.merge_resolver:MergeResolver",
}
BUILD_ROLES: dict[str, str] = {
    "agents.backendDev": "backend_developer",
    "agents.frontendDev": "frontend_developer",
    "agents.tester": "tester",
    "agents.bugFixer": "bug_fixer",
    "agents.reviewer": "reviewer",
}
"""The roles the build step calls, by the flag that turns each on (started with the run's agents)."""


def agent_class(role: str) -> Any:
    module, name = ROLE_CLASSES[role].split(":")
    return getattr(importlib.import_module(module), name)
