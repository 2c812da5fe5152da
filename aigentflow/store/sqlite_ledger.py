"""The SQLite run store's ledger: the audit log, the controls (the emergency switches), releases and the
cost reports, a part of ``SQLiteRunStore`` (kept apart from ``sqlite.py``: one concept per file). Every
write is its own transaction (``_write``); reads filter by tenant when one is given."""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from typing import Any

from aigentflow.exceptions import UsageError
from aigentflow.store.records import COST_GROUPS, AuditRecord, ReleaseRecord, cost_row, dumps
from aigentflow.store.rows import now_iso


class LedgerTables:
    """``audit``, ``controls``, ``releases`` and the cost reports over ``steps`` and ``model_usage``; mixed
    into ``SQLiteRunStore`` (whose ``_write`` and ``_query`` it uses)."""

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:  # provided by SQLiteRunStore
        raise NotImplementedError

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:  # provided by SQLiteRunStore
        raise NotImplementedError

    # -- audit and controls ---------------------------------------------------------------------

    def append_audit(self, event: str, run_id: str | None, data: dict[str, Any], *, at: str | None = None,
                     tenant_id: str = "default") -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO audit (tenant_id, run_id, event, at, data_json) VALUES (?,?,?,?,?)",
                (tenant_id, run_id, event, at or now_iso(), dumps(data)),
            )

    def audit(self, run_id: str | None = None, tenant_id: str | None = None) -> list[AuditRecord]:
        where = [clause for clause, value in (("run_id=?", run_id), ("tenant_id=?", tenant_id)) if value]
        rows = self._query("SELECT * FROM audit" + (" WHERE " + " AND ".join(where) if where else "")
                           + " ORDER BY seq", tuple(v for v in (run_id, tenant_id) if v))
        return [
            AuditRecord(r["seq"], r["tenant_id"], r["run_id"], r["event"], r["at"], json.loads(r["data_json"]))
            for r in rows
        ]

    def set_control(self, key: str, value: Any, tenant_id: str = "default") -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO controls VALUES (?,?,?,?) ON CONFLICT(tenant_id, key) DO UPDATE SET"
                " value=excluded.value, updated_at=excluded.updated_at",
                (tenant_id, key, dumps(value), now_iso()),
            )

    def get_control(self, key: str, default: Any = None, tenant_id: str = "default") -> Any:
        rows = self._query("SELECT value FROM controls WHERE tenant_id=? AND key=?", (tenant_id, key))
        return json.loads(rows[0]["value"]) if rows else default

    # -- releases -------------------------------------------------------------------------------

    def record_release(self, *, project_id: str, version: str, tag: str, commit_sha: str, changelog: str,
                       run_ids: list[str], tenant_id: str = "default") -> ReleaseRecord:
        """Record a release; idempotent per tag (a release recorded again returns the first record)."""
        import secrets

        with self._write() as conn:
            conn.execute(
                "INSERT INTO releases (id, tenant_id, project_id, version, tag, commit_sha, changelog, run_ids_json,"
                " created_at) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(tag) DO NOTHING",
                ("rel-" + secrets.token_hex(4), tenant_id, project_id, version, tag, commit_sha, changelog,
                 dumps(sorted(run_ids)), now_iso()),
            )
        return next(r for r in self.releases() if r.tag == tag)

    def releases(self, tenant_id: str | None = None) -> list[ReleaseRecord]:
        """Recorded releases, newest first."""
        if tenant_id:
            rows = self._query("SELECT * FROM releases WHERE tenant_id=? ORDER BY created_at DESC, rowid DESC",
                               (tenant_id,))
        else:
            rows = self._query("SELECT * FROM releases ORDER BY created_at DESC, rowid DESC")
        return [
            ReleaseRecord(r["id"], r["tenant_id"], r["project_id"], r["version"], r["tag"], r["commit_sha"],
                          r["changelog"], json.loads(r["run_ids_json"]), r["created_at"])
            for r in rows
        ]


    def costs(self, by: str = "run", *, tenant_id: str | None = None,
              run_id: str | None = None) -> list[dict[str, Any]]:
        """Tokens, calls and cost grouped ``by`` run, tenant, model or step (``COST_GROUPS``)."""
        if by not in COST_GROUPS:
            raise UsageError(f"costs can be grouped by {', '.join(COST_GROUPS)}, not {by!r}")
        where, params = [], []
        for column, value in (("tenant_id", tenant_id), ("run_id", run_id)):
            if value:
                where.append(f"{column}=?")
                params.append(value)
        filtered = (" WHERE " + " AND ".join(where)) if where else ""
        sums = "SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens, SUM(cost_usd) AS cost_usd"
        query = {
            "run": f"SELECT run_id, tenant_id, SUM(model_calls) AS model_calls, {sums} FROM steps{filtered} "
                   "GROUP BY run_id, tenant_id ORDER BY MIN(started_at)",
            "tenant": f"SELECT tenant_id, COUNT(DISTINCT run_id) AS runs, SUM(model_calls) AS model_calls, {sums} "
                      f"FROM steps{filtered} GROUP BY tenant_id ORDER BY tenant_id",
            "step": f"SELECT run_id, step, SUM(model_calls) AS model_calls, {sums} FROM steps{filtered} "
                    "GROUP BY run_id, step ORDER BY MIN(started_at), step",
            "model": f"SELECT model, provider, SUM(calls) AS model_calls, {sums} FROM model_usage{filtered} "
                     "GROUP BY model, provider ORDER BY model, provider",
        }[by]
        return [cost_row(dict(r)) for r in self._query(query, tuple(params))]
