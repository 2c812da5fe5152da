"""What the API reads, always as one tenant: every query carries the caller's ``tenant_id``.

``TenantReads(store, tenant_id)`` has the shape of ``aigentflow.tenants.scope.TenantView`` (built on
another branch): ``list_runs``, ``get_run`` (raising ``NotFound``), ``steps``, ``transitions``, ``audit``,
``costs``. This module is the one place the API reads run data, so that at the merge ``open_reads`` returns
a ``TenantView`` instead and ``NotFound`` is that module's. A run of another tenant and a run that does not
exist are the same ``NotFound``: nothing here tells them apart.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aigentflow.exceptions import UsageError
from aigentflow.store.records import AuditRecord, RunRecord, StepRecord, TransitionRecord
from aigentflow.store.rows import run_from_row, step_from_row
from aigentflow.store.sqlite import BUSY_TIMEOUT_MS, SQLiteRunStore


class NotFound(UsageError):
    """No run with that id for this tenant (whether it does not exist or is another tenant's)."""


class TenantReads:
    """The run store as ``tenant_id`` sees it: its runs, their steps, logs, audit and costs, nobody else's."""

    def __init__(self, store: SQLiteRunStore, tenant_id: str) -> None:
        if not tenant_id:
            raise ValueError("a tenant id is required")
        self.store = store
        self.tenant_id = tenant_id
        self._conn = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                     check_same_thread=False)
        self._conn.row_factory = sqlite3.Row

    def close(self) -> None:
        self._conn.close()

    def _rows(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        return self._conn.execute(sql, (self.tenant_id, *params)).fetchall()

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        """The tenant's newest ``limit`` runs, newest first."""
        rows = self._rows("SELECT * FROM runs WHERE tenant_id=? ORDER BY created_at DESC, id DESC LIMIT ?", limit)
        return [run_from_row(r) for r in rows]

    def count_runs(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM runs WHERE tenant_id=?")[0][0])

    def get_run(self, run_id: str) -> RunRecord:
        rows = self._rows("SELECT * FROM runs WHERE tenant_id=? AND id=?", run_id)
        if not rows:
            raise NotFound("no such run")
        return run_from_row(rows[0])

    def steps(self, run_id: str) -> list[StepRecord]:
        rows = self._rows("SELECT * FROM steps WHERE tenant_id=? AND run_id=? ORDER BY started_at, step, attempt",
                          run_id)
        return [step_from_row(r) for r in rows]

    def transitions(self, run_id: str) -> list[TransitionRecord]:
        """The run's log, oldest first."""
        rows = self._rows("SELECT * FROM transitions WHERE tenant_id=? AND run_id=? ORDER BY seq", run_id)
        return [TransitionRecord(r["seq"], r["run_id"], r["from_state"], r["to_state"], r["event"], r["reason"],
                                 r["at"]) for r in rows]

    def audit(self, run_id: str | None = None) -> list[AuditRecord]:
        """The tenant's audit entries (of ``run_id``, or all), in the order they were appended."""
        if run_id is None:
            rows = self._rows("SELECT * FROM audit WHERE tenant_id=? ORDER BY seq")
        else:
            rows = self._rows("SELECT * FROM audit WHERE tenant_id=? AND run_id=? ORDER BY seq", run_id)
        return [AuditRecord(r["seq"], r["tenant_id"], r["run_id"], r["event"], r["at"], json.loads(r["data_json"]))
                for r in rows]

    def costs(self, by: str = "run", run_id: str | None = None) -> list[dict[str, Any]]:
        """The tenant's costs grouped ``by`` run, step or model (of one run, or all its runs)."""
        return self.store.costs(by, tenant_id=self.tenant_id, run_id=run_id)


@contextmanager
def open_reads(database: Any, tenant_id: str) -> Iterator[TenantReads]:
    """The tenant's reads of the state database at ``database``, closed on the way out."""
    store = SQLiteRunStore(database, readonly=True)
    try:
        reads = TenantReads(store, tenant_id)
        try:
            yield reads
        finally:
            reads.close()
    finally:
        store.close()
