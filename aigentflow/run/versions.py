"""Which version of each role a run uses: the project's registry (``aigentflow.roles``), as the run's recorded
``agents`` settings choose, with generated versions as the policy allows (approval required unless
``evolution.requireApproval`` is off; none at all while the operator's ``--disable-generated-agents`` switch
is on)."""

from __future__ import annotations

from typing import Any

from aigentflow.emergency import DISABLE_GENERATED, OPERATOR_TENANT
from aigentflow.project.paths import ProjectPaths
from aigentflow.roles.registry import ActiveRoles
from aigentflow.store.sqlite import SQLiteRunStore


def generated_policy(paths: ProjectPaths, flags: Any = None) -> dict[str, bool]:
    """How generated role versions are treated: ``evolution.requireApproval`` (default on) and the emergency
    switch that disables them all (read from the store's controls; off when there is no store yet)."""
    disabled = False
    if paths.database.exists():
        store = SQLiteRunStore(paths.database)
        try:
            disabled = bool(store.get_control(DISABLE_GENERATED, False, tenant_id=OPERATOR_TENANT))
        finally:
            store.close()
    return {"require_approval": bool((flags or {}).get("evolution.requireApproval", True)),
            "disable_generated": disabled}


def active_roles(paths: ProjectPaths, choices: Any = None, flags: Any = None) -> ActiveRoles:
    """The role versions ``choices`` (a run's recorded ``agents`` settings) name, from the project's registry
    (generated versions as ``generated_policy`` allows)."""
    from aigentflow.roles.registry import project_registry

    return project_registry(paths).require_valid().resolve(choices, **generated_policy(paths, flags))


