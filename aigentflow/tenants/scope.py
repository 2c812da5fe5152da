"""``TenantView``: the run store as one tenant sees it. Every read filters by the tenant (in SQL, with the
tenant's id bound in each statement: ``tests/test_tenants_isolation.py`` captures them), and an id of another
tenant's run is ``NotFound``, exactly as an id that does not exist: a view never tells whether another
tenant's run exists. The HTTP API (``aigentflow serve``) answers through it."""

from __future__ import annotations

from typing import Any

from aigentflow.exceptions import UnknownRun
from aigentflow.store.records import ArtifactRecord, AuditRecord, ReleaseRecord, RunRecord, StepRecord, TransitionRecord
from aigentflow.tenants.registry import check_id


class NotFound(UnknownRun):
    """No such run for this tenant (it may not exist, or be another tenant's: the view does not say)."""


class TenantView:
    """Tenant-scoped reads over a ``RunStore`` (``store``): see the module docstring."""

    def __init__(self, store: Any, tenant_id: str) -> None:
        self.store = store
        self.tenant_id = check_id(tenant_id)  # never "": an empty tenant would read unscoped

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        """The tenant's runs, newest first (``limit`` -1: all)."""
        return self.store.list_runs(limit, tenant_id=self.tenant_id)

    def get_run(self, run_id: str) -> RunRecord:
        try:
            return self.store.get_run(run_id, tenant_id=self.tenant_id)
        except UnknownRun:
            raise NotFound(f"no run {run_id!r} for tenant {self.tenant_id}") from None

    def steps(self, run_id: str) -> list[StepRecord]:
        self.get_run(run_id)
        return self.store.steps(run_id, tenant_id=self.tenant_id)

    def transitions(self, run_id: str) -> list[TransitionRecord]:
        self.get_run(run_id)
        return self.store.transitions(run_id, tenant_id=self.tenant_id)

    def artifacts(self, run_id: str) -> list[ArtifactRecord]:
        self.get_run(run_id)
        return self.store.artifacts(run_id, tenant_id=self.tenant_id)

    def audit(self, run_id: str | None = None) -> list[AuditRecord]:
        """The tenant's audit entries (of one of its runs, if given: ``NotFound`` for another's)."""
        if run_id is not None:
            self.get_run(run_id)
        return self.store.audit(run_id, tenant_id=self.tenant_id)

    def costs(self, by: str = "run") -> list[dict[str, Any]]:
        """The tenant's calls, tokens and cost grouped ``by`` run, tenant, step or model."""
        return self.store.costs(by, tenant_id=self.tenant_id)

    def releases(self) -> list[ReleaseRecord]:
        return self.store.releases(tenant_id=self.tenant_id)
