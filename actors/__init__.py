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
- ``specs.py``: the built-in roles as data (``AgentSpec``), registered with ``aigentflow.roles`` through the
  ``aigentflow.roles`` entry point. What a role is (its steps, class, workflow, flags) lives there only.
"""

from __future__ import annotations

import importlib
from typing import Any


def load_class(path: str) -> Any:
    """The class a spec names as ``module:Class``."""
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def agent_class(role: str) -> Any:
    """The class of ``role``'s built-in version."""
    from actors.specs import BUILTIN_SPECS

    return load_class(next(spec.implementation for spec in BUILTIN_SPECS if spec.name == role))
