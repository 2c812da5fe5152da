"""The single-tenant switch: ``aigentflow admin emergency --single-tenant-mode`` (the rollout plan's kill
switch for multi-tenancy, and step one of the Enterprise phase's rollback).

While it is on, multi-tenant routing is off: every new run is recorded under the operator's tenant
(``DEFAULT_TENANT``) whatever ``run.tenant`` says, and the HTTP API (``aigentflow serve``) answers only
the operator tenant's tokens (any other tenant's gets 503, saying why). Nothing is deleted or moved:
every tenant's projects, runs, traces and audit rows stay as they are, and lifting the switch
(``--multi-tenant-mode``) brings routing back exactly as it was. Persisted in the run store's controls
(the operator tenant's row), so it holds across processes and restarts until lifted.
"""

from __future__ import annotations

from typing import Any

from aigentflow.emergency import OPERATOR_TENANT as DEFAULT_TENANT
from aigentflow.emergency import SINGLE_TENANT_MODE

__all__ = ["DEFAULT_TENANT", "SINGLE_TENANT_MODE", "routed_tenant", "set_single_tenant_mode", "single_tenant_mode"]


def single_tenant_mode(store: Any) -> bool:
    """Whether the switch is on (``store``: a ``RunStore``)."""
    return bool(store.get_control(SINGLE_TENANT_MODE, False, tenant_id=DEFAULT_TENANT))


def set_single_tenant_mode(store: Any, on: bool, reason: str = "admin emergency") -> None:
    """Turn the switch on or off, and audit it (``admin.emergency``)."""
    store.set_control(SINGLE_TENANT_MODE, bool(on), tenant_id=DEFAULT_TENANT)
    store.append_audit("admin.emergency", None, {"single_tenant_mode": bool(on), "reason": reason},
                       tenant_id=DEFAULT_TENANT)


def routed_tenant(store: Any, wanted: str) -> str:
    """The tenant a new run is recorded under: ``wanted``, or the operator's while the switch is on."""
    return DEFAULT_TENANT if single_tenant_mode(store) else wanted
