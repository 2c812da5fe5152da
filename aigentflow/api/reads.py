"""What the API reads, always as one tenant: ``aigentflow.tenants.scope.TenantView`` over a read-only store
(every statement carries the caller's ``tenant_id``; ``tests/test_tenants_isolation.py`` checks them), with
the two reads the API adds: a count of the tenant's runs, and costs of one of its runs. A run of another
tenant and a run that does not exist are the same ``NotFound``: nothing here tells them apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aigentflow.store.sqlite import SQLiteRunStore
from aigentflow.tenants.scope import NotFound, TenantView

__all__ = ["NotFound", "TenantReads", "open_reads"]


class TenantReads(TenantView):
    """The run store as ``tenant_id`` sees it: its runs, their steps, logs, audit and costs, nobody else's."""

    def count_runs(self) -> int:
        return len(self.store.list_runs(-1, tenant_id=self.tenant_id))

    def costs(self, by: str = "run", run_id: str | None = None) -> list[dict[str, Any]]:
        """The tenant's costs grouped ``by`` run, step or model (of one of its runs, or of all)."""
        if run_id is not None:
            self.get_run(run_id)
        return self.store.costs(by, tenant_id=self.tenant_id, run_id=run_id)


@contextmanager
def open_reads(database: Any, tenant_id: str) -> Iterator[TenantReads]:
    """The tenant's reads of the state database at ``database``, closed on the way out."""
    with SQLiteRunStore(database, readonly=True) as store:
        yield TenantReads(store, tenant_id)
