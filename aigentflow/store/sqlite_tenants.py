"""The SQLite run store's tenant registry and quotas (migration 7), a part of ``SQLiteRunStore``.

Kept apart from ``sqlite.py`` (one concept per file): the tables are plain rows; what a tenant id may be,
which kinds and periods a quota has, and how usage becomes a refusal live in ``aigentflow.tenants``.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import Any

from aigentflow.exceptions import UsageError
from aigentflow.store.records import QuotaRecord, TenantRecord, TenantUsage
from aigentflow.store.rows import now_iso


def _tenant(row: Any) -> TenantRecord:
    return TenantRecord(row["id"], row["name"], row["status"], row["created_at"])


def _quota(row: Any) -> QuotaRecord:
    return QuotaRecord(row["tenant_id"], row["kind"], float(row["limit"]), row["period"], row["updated_at"])


class TenantTables:
    """``tenants`` and ``quotas``; mixed into ``SQLiteRunStore`` (whose ``_write`` and ``_query`` it uses)."""

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:  # provided by SQLiteRunStore
        raise NotImplementedError

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:  # provided by SQLiteRunStore
        raise NotImplementedError

    def create_tenant(self, tenant_id: str, name: str) -> TenantRecord:
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM tenants WHERE id=?", (tenant_id,)).fetchone():
                raise UsageError(f"tenant {tenant_id!r} already exists; `aigentflow tenants show {tenant_id}`")
            conn.execute("INSERT INTO tenants (id, name, status, created_at) VALUES (?,?,?,?)",
                         (tenant_id, name, "active", now_iso()))
        return self._get_tenant(tenant_id)

    def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        rows = self._query("SELECT * FROM tenants WHERE id=?", (tenant_id,))
        return _tenant(rows[0]) if rows else None

    def _get_tenant(self, tenant_id: str) -> TenantRecord:
        found = self.get_tenant(tenant_id)
        if found is None:
            raise UsageError(f"no tenant {tenant_id!r}; `aigentflow tenants list` lists them")
        return found

    def tenants(self) -> list[TenantRecord]:
        return [_tenant(r) for r in self._query("SELECT * FROM tenants ORDER BY id")]

    def set_tenant_status(self, tenant_id: str, status: str) -> TenantRecord:
        with self._write() as conn:
            if conn.execute("UPDATE tenants SET status=? WHERE id=?", (status, tenant_id)).rowcount != 1:
                raise UsageError(f"no tenant {tenant_id!r}; `aigentflow tenants list` lists them")
        return self._get_tenant(tenant_id)

    def set_quota(self, tenant_id: str, kind: str, limit: float, period: str) -> QuotaRecord:
        with self._write() as conn:
            conn.execute(
                'INSERT INTO quotas (tenant_id, kind, "limit", period, updated_at) VALUES (?,?,?,?,?) '
                'ON CONFLICT(tenant_id, kind, period) DO UPDATE SET "limit"=excluded."limit", '
                "updated_at=excluded.updated_at", (tenant_id, kind, float(limit), period, now_iso()))
        return next(q for q in self.quotas(tenant_id) if (q.kind, q.period) == (kind, period))

    def delete_quota(self, tenant_id: str, kind: str, period: str | None = None) -> int:
        with self._write() as conn:
            if period:
                return conn.execute("DELETE FROM quotas WHERE tenant_id=? AND kind=? AND period=?",
                                    (tenant_id, kind, period)).rowcount
            return conn.execute("DELETE FROM quotas WHERE tenant_id=? AND kind=?", (tenant_id, kind)).rowcount

    def quotas(self, tenant_id: str) -> list[QuotaRecord]:
        return [_quota(r) for r in self._query("SELECT * FROM quotas WHERE tenant_id=? ORDER BY kind, period",
                                               (tenant_id,))]

    def tenant_usage(self, tenant_id: str, since: str) -> TenantUsage:
        runs = self._query("SELECT COUNT(*) FROM runs WHERE tenant_id=? AND created_at>=?", (tenant_id, since))
        used = self._query(
            "SELECT COALESCE(SUM(model_calls), 0), COALESCE(SUM(input_tokens + output_tokens), 0), "
            "COALESCE(SUM(cost_usd), 0) FROM steps WHERE tenant_id=? AND finished_at>=?", (tenant_id, since))
        calls, tokens, cost = used[0]
        return TenantUsage(int(runs[0][0]), int(calls), int(tokens), float(cost))

