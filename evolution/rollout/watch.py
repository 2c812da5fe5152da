"""The rollout's checks after every run, without a human command.

aigentflow calls ``run_finished(project_root, event)`` when a run finishes (``run.finished``) or fails
(``run.failed``) while a rollout file names it as its ``watch`` (``aigentflow.roles.canary.watchers``;
aigentflow never imports this module by name: the name is data in the rollout file, as a hook's is in the
config). It runs the same ``canary.check`` as ``aigentflow canary status``: a regression past the checks
rolls back at once and opens an incident; a shadow stage that passes moves to the canary's 10%. It runs on
the finished run's hook worker; a failure is audited there (``hook.failed``) and never touches the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def run_finished(project_root: str, event: Any) -> list[dict[str, Any]]:
    """Check every active rollout of the project; what each check found (for the audit and the tests)."""
    from aigentflow.project.paths import ProjectPaths
    from evolution.rollout.canary import check
    from evolution.rollout.switches import evolution_disabled

    paths = ProjectPaths(Path(project_root))
    if evolution_disabled(paths.root):
        return []
    checked = []
    for path in sorted((Path(paths.state_dir) / "canary").glob("*.json")):
        try:
            rollout = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(rollout, dict) and rollout.get("status") == "active" and rollout.get("role"):
            checked.append(check(paths, str(rollout["role"])))
    return checked
