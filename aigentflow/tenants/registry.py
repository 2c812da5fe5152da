"""The tenant registry: which tenant ids exist, their status, their quotas; every change audited under the
tenant it changes (``tenant.created``, ``tenant.suspended``, ``tenant.activated``, ``quota.set``,
``quota.unset``).

Ids are lowercase slugs (``acme``, ``acme-eu-2``). ``default`` always exists (migration 7 registers it):
it is the operator's tenant, where a project's runs go unless ``run.tenant`` names another, and where
single-tenant mode sends every new run.
"""

from __future__ import annotations

import os
import re
from typing import Any

from aigentflow.exceptions import UsageError
from aigentflow.store.records import QuotaRecord, TenantRecord
from aigentflow.tenants.mode import DEFAULT_TENANT

TENANT_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
PERIOD_KINDS = ("runs", "tokens", "cost_usd")
"""Quotas counted over a calendar period (UTC): runs created, tokens (in + out) and cost of steps finished."""
RATE_KIND = "calls_per_minute"
"""The Model Gateway's rate limit: model calls per minute (a token bucket in the gateway, cluster-wide)."""
KINDS = (*PERIOD_KINDS, RATE_KIND)
PERIODS = ("day", "week", "month")
STATUSES = ("active", "suspended")


def check_id(tenant_id: str) -> str:
    """``tenant_id`` if it is a lowercase slug, else ``UsageError`` saying what one looks like."""
    if not isinstance(tenant_id, str) or not TENANT_ID.match(tenant_id):
        raise UsageError(f"tenant id {tenant_id!r} is not a lowercase slug: use 1-40 of a-z, 0-9 and '-', "
                         "starting and ending with a letter or digit (e.g. acme or acme-eu)")
    return tenant_id


def require(store: Any, tenant_id: str) -> TenantRecord:
    """The registered tenant, or ``UsageError`` naming it and how to register it."""
    check_id(tenant_id)
    found = store.get_tenant(tenant_id)
    if found is None:
        raise UsageError(f"no tenant {tenant_id!r} is registered in this project; register it with "
                         f"`aigentflow tenants create {tenant_id}` (`aigentflow tenants list` lists them)")
    return found


def _actor() -> str:
    return os.environ.get("AIGENTFLOW_USER") or os.environ.get("USER") or "unknown"


def create(store: Any, tenant_id: str, name: str | None = None) -> TenantRecord:
    check_id(tenant_id)
    tenant = store.create_tenant(tenant_id, (name or tenant_id).strip() or tenant_id)
    store.append_audit("tenant.created", None, {"tenant": tenant_id, "name": tenant.name, "by": _actor()},
                       tenant_id=tenant_id)
    return tenant


def set_status(store: Any, tenant_id: str, status: str) -> TenantRecord:
    """Suspend (its runs are refused) or activate a tenant; 'default' cannot be suspended."""
    require(store, tenant_id)
    if status not in STATUSES:
        raise UsageError(f"a tenant's status is one of {', '.join(STATUSES)}, not {status!r}")
    if tenant_id == DEFAULT_TENANT and status != "active":
        raise UsageError("the default tenant cannot be suspended (single-tenant mode sends every run to it); "
                         "use `aigentflow admin emergency --pause-all` to stop all work")
    tenant = store.set_tenant_status(tenant_id, status)
    store.append_audit(f"tenant.{'suspended' if status == 'suspended' else 'activated'}", None,
                       {"tenant": tenant_id, "by": _actor()}, tenant_id=tenant_id)
    return tenant


def set_quota(store: Any, tenant_id: str, kind: str, limit: float, period: str | None) -> QuotaRecord:
    """Set the tenant's quota of ``kind`` (``KINDS``) per ``period`` (``PERIODS``; none for calls_per_minute)."""
    require(store, tenant_id)
    if kind not in KINDS:
        raise UsageError(f"a quota is one of {', '.join(KINDS)}, not {kind!r}")
    if kind == RATE_KIND:
        if period not in (None, "minute"):
            raise UsageError("--calls-per-minute is per minute: leave out --period")
        period = "minute"
    elif period not in PERIODS:
        raise UsageError(f"a {kind} quota needs --period, one of {', '.join(PERIODS)} (UTC calendar periods)")
    if limit < 0 or (kind != "cost_usd" and float(limit) != int(limit)):
        raise UsageError(f"a {kind} quota is a whole number >= 0, not {limit!r}" if kind != "cost_usd"
                         else f"a cost_usd quota is a number of dollars >= 0, not {limit!r}")
    if kind == RATE_KIND and limit < 1:
        raise UsageError("--calls-per-minute must be at least 1 (a tenant that may not call models: suspend it)")
    previous = next((q.limit for q in store.quotas(tenant_id) if (q.kind, q.period) == (kind, period)), None)
    quota = store.set_quota(tenant_id, kind, float(limit), str(period))
    store.append_audit("quota.set", None, {"tenant": tenant_id, "kind": kind, "limit": quota.limit,
                                           "period": quota.period, "previous": previous, "by": _actor()},
                       tenant_id=tenant_id)
    return quota


def unset_quota(store: Any, tenant_id: str, kind: str, period: str | None = None) -> int:
    require(store, tenant_id)
    if kind not in KINDS:
        raise UsageError(f"a quota is one of {', '.join(KINDS)}, not {kind!r}")
    removed = store.delete_quota(tenant_id, kind, period)
    if not removed:
        raise UsageError(f"tenant {tenant_id!r} has no {kind} quota{f' per {period}' if period else ''}; "
                         f"`aigentflow tenants quota show {tenant_id}` lists its quotas")
    store.append_audit("quota.unset", None, {"tenant": tenant_id, "kind": kind, "period": period, "by": _actor()},
                       tenant_id=tenant_id)
    return int(removed)
