"""The in-memory twin's tenant registry and quotas, as ``sqlite_tenants.py`` keeps them in SQLite (the
conformance suite holds both to the same results and errors)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aigentflow.exceptions import StoreError, UsageError
from aigentflow.store.records import QuotaRecord, TenantRecord, TenantUsage
from aigentflow.store.rows import now_iso


def _tenant(row: dict[str, Any]) -> TenantRecord:
    return TenantRecord(row["id"], row["name"], row["status"], row["created_at"])


def _quota(row: dict[str, Any]) -> QuotaRecord:
    return QuotaRecord(row["tenant_id"], row["kind"], float(row["limit"]), row["period"], row["updated_at"])


class TenantTablesInMemory:
    """``tenants`` and ``quotas``; mixed into ``InMemoryRunStore`` (whose ``_locked`` it uses)."""

    def _locked(self, action: Callable[[Any], Any]) -> Any:  # provided by InMemoryRunStore
        raise NotImplementedError

    def create_tenant(self, tenant_id: str, name: str) -> TenantRecord:
        def write(t: Any) -> TenantRecord:
            if tenant_id in t.tenants:
                raise UsageError(f"tenant {tenant_id!r} already exists; `aigentflow tenants show {tenant_id}`")
            t.tenants[tenant_id] = {"id": tenant_id, "name": name, "status": "active", "created_at": now_iso()}
            return _tenant(t.tenants[tenant_id])
        return self._locked(write)

    def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        return self._locked(lambda t: _tenant(t.tenants[tenant_id]) if tenant_id in t.tenants else None)

    def tenants(self) -> list[TenantRecord]:
        return self._locked(lambda t: [_tenant(t.tenants[k]) for k in sorted(t.tenants)])

    def set_tenant_status(self, tenant_id: str, status: str) -> TenantRecord:
        def write(t: Any) -> TenantRecord:
            if tenant_id not in t.tenants:
                raise UsageError(f"no tenant {tenant_id!r}; `aigentflow tenants list` lists them")
            t.tenants[tenant_id]["status"] = status
            return _tenant(t.tenants[tenant_id])
        return self._locked(write)

    def set_quota(self, tenant_id: str, kind: str, limit: float, period: str) -> QuotaRecord:
        def write(t: Any) -> QuotaRecord:
            if tenant_id not in t.tenants:
                raise StoreError(f"no tenant {tenant_id!r}: FOREIGN KEY constraint failed; nothing was written")
            row = {"tenant_id": tenant_id, "kind": kind, "limit": float(limit), "period": period,
                   "updated_at": now_iso()}
            t.quotas[(tenant_id, kind, period)] = row
            return _quota(row)
        return self._locked(write)

    def delete_quota(self, tenant_id: str, kind: str, period: str | None = None) -> int:
        def write(t: Any) -> int:
            keys = [k for k in t.quotas if k[:2] == (tenant_id, kind) and (not period or k[2] == period)]
            for key in keys:
                del t.quotas[key]
            return len(keys)
        return self._locked(write)

    def quotas(self, tenant_id: str) -> list[QuotaRecord]:
        return self._locked(lambda t: [_quota(t.quotas[k]) for k in sorted(t.quotas) if k[0] == tenant_id])

    def tenant_usage(self, tenant_id: str, since: str) -> TenantUsage:
        def read(t: Any) -> TenantUsage:
            runs = sum(1 for r in t.runs.values() if r["tenant_id"] == tenant_id and r["created_at"] >= since)
            steps = [s for s in t.steps.values()
                     if s["tenant_id"] == tenant_id and s["finished_at"] is not None and s["finished_at"] >= since]
            return TenantUsage(runs, sum(s["model_calls"] for s in steps),
                               sum(s["input_tokens"] + s["output_tokens"] for s in steps),
                               float(sum(s["cost_usd"] for s in steps)))
        return self._locked(read)
