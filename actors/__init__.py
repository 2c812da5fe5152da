"""Agent roles, one module each: a plain class made a Ray actor by ``factory.make_actor``.

- ``base.py``: what every role shares (prompt, structured model call, spans).
- ``analyst.py``, ``project_manager.py``, ``architect.py``: the MVP roles.
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
}

ROLE_CLASSES: dict[str, str] = {role: path for role, path in STEP_AGENTS.values()}


def agent_class(role: str) -> Any:
    module, name = ROLE_CLASSES[role].split(":")
    return getattr(importlib.import_module(module), name)
