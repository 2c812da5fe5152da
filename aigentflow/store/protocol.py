"""``RunStore``: what the engine, the runner, the Orchestrator and the commands need of a run store.

The SQLite store (``sqlite.py``) is the reference; ``memory.py`` is its in-memory twin; both pass
``tests/store_conformance.py``. Records are the frozen dataclasses of ``records.py``; a record read
from a store is a copy (changing it changes nothing stored).

The contract, in short:

- **Compare-and-set.** Every write that moves a run (``transition``, ``complete_step``) names the
  ``expected_version`` it read. It applies only if the run still has that version, then bumps the
  version by one and appends one entry to the run's transition log; otherwise it raises ``StaleRun``
  and writes nothing. Of N writers racing from the same version, exactly one wins.
- **Step idempotency.** (run, step, attempt) is a step's key. ``begin_step`` never starts a step that
  has completed (it returns the completed record), and resumes an interrupted one under its key.
  ``complete_step`` writes the step's result, its artifacts and the run's next state in one atomic
  write; committing a completed step again raises ``StaleRun`` and writes nothing.
- **Errors.** An unknown run id is ``UnknownRun``; a store that is closed, read-only, corrupted or
  locked is ``StoreError``.
- **Context manager.** ``with store:`` closes the store on the way out.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from aigentflow.store.records import (
    ArtifactRecord,
    AuditRecord,
    QuotaRecord,
    ReleaseRecord,
    RunRecord,
    StepRecord,
    StepUsage,
    TenantRecord,
    TenantUsage,
    TransitionRecord,
)


@runtime_checkable
class RunStore(Protocol):
    """Projects, runs, the transition log, steps, artifacts, audit, controls and releases."""

    def close(self) -> None:
        """Release the store; any later call raises ``StoreError``. Closing twice is harmless."""

    def __enter__(self) -> Self:
        """``with store:`` yields the store itself."""

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Close the store (exceptions propagate)."""

    # -- projects ---------------------------------------------------------------------------------

    def upsert_project(self, name: str, facts: dict[str, Any], tenant_id: str = "default") -> str:
        """Record the project (a store holds one) or refresh its name and facts; returns its id,
        which never changes once created (nor does its tenant)."""

    def get_project(self) -> dict[str, Any] | None:
        """The project as ``{id, tenant_id, name, facts, created_at, updated_at}``, or None."""

    # -- runs -------------------------------------------------------------------------------------

    def create_run(self, *, project_id: str, request: str, model: str, settings: dict[str, Any],
                   flags: dict[str, Any], tenant_id: str = "default", run_id: str | None = None) -> RunRecord:
        """A new run in CREATED at version 0, its log starting with one CREATE entry (from None).
        Ids are ``YYMMDD-HHMMSS-xxxx`` (UTC), so they sort by creation time; ``run_id``: one made
        beforehand with ``new_run_id`` (the canary routing needs it before the settings are recorded)."""

    def get_run(self, run_id: str, tenant_id: str | None = None) -> RunRecord:
        """The run with exactly this id (and of ``tenant_id``, if given); ``UnknownRun`` if none."""

    def resolve_run_id(self, prefix: str) -> str:
        """The full id of the one run whose id starts with ``prefix`` (ASCII case-insensitively; an
        exact id wins over longer ids it prefixes). ``UnknownRun`` if none or several match."""

    def list_runs(self, limit: int = 50, tenant_id: str | None = None) -> list[RunRecord]:
        """Up to ``limit`` runs (of ``tenant_id``, or all), newest first (created_at, then id, descending)."""

    def transition(self, run_id: str, *, expected_version: int, to_state: str, return_to: str | None,
                   event: str, reason: str | None = None, error: str | None = None,
                   terminal: bool = False) -> RunRecord:
        """Compare-and-set move: only if the run is still at ``expected_version`` (else ``StaleRun``,
        nothing written; ``UnknownRun`` if there is no such run). Sets state and return_to, bumps
        version, sets ``error`` if given (else keeps it), ``finished_at`` if ``terminal``, clears a
        pause request when moving to PAUSED, appends (from, to, event, reason) to the log. Returns
        the moved run."""

    def transitions(self, run_id: str, tenant_id: str | None = None) -> list[TransitionRecord]:
        """The run's append-only log, oldest first (``seq`` increases across the whole store); with
        ``tenant_id``, only entries of that tenant (none for another tenant's run)."""

    def request_pause(self, run_id: str) -> None:
        """Ask the run's driver to pause at its next boundary (``pause_requested``). No version bump."""

    def clear_pause_request(self, run_id: str) -> None:
        """Withdraw a pause request (resuming overrides it). No version bump."""

    def claim(self, run_id: str, pid: int | None = None, host: str | None = None) -> None:
        """Record the driving process (default: this one, on this host) and its heartbeat."""

    def release(self, run_id: str) -> None:
        """Forget the run's owner (pid and host); the heartbeat stays as the last sign of life."""

    def add_model_calls(self, run_id: str, count: int) -> int:
        """Add to the run's model-call count; returns the new total. No version bump."""

    # -- steps ------------------------------------------------------------------------------------

    def begin_step(self, run_id: str, step: str, role: str, state: str, *,
                   new_attempt: bool = False) -> StepRecord:
        """The step's record to work on: a completed attempt is returned as is (never redone); an
        interrupted (``started``) one is returned to be retried under the same key; a failed one is
        returned as is unless ``new_attempt``, which starts the next attempt; with no attempt yet,
        attempt 1 is started. ``UnknownRun`` if a step must be started for an unknown run."""

    def complete_step(self, step: StepRecord, *, output: dict[str, Any], usage: StepUsage,
                      artifacts: list[ArtifactRecord], expected_version: int, to_state: str,
                      return_to: str | None = None, event: str = "ADVANCE",
                      terminal: bool = False) -> RunRecord:
        """One atomic write: the step completed with ``output`` and ``usage``, its artifacts recorded
        (one per run and name: a name recorded again is replaced), and the run moved as by
        ``transition``. ``StaleRun`` with nothing written if the step is already completed (or was
        never begun) or the run's version moved. Returns the moved run."""

    def fail_step(self, step: StepRecord, error: str, usage: StepUsage | None = None) -> None:
        """Mark the attempt failed with ``error`` and its usage; a completed step stays completed."""

    def steps(self, run_id: str, tenant_id: str | None = None) -> list[StepRecord]:
        """Every attempt of every step of the run, ordered by (started_at, step, attempt); with
        ``tenant_id``, only that tenant's."""

    def costs(self, by: str = "run", *, tenant_id: str | None = None,
              run_id: str | None = None) -> list[dict[str, Any]]:
        """Calls, tokens and cost grouped ``by`` run, tenant, step (every attempt's usage, failed ones
        too) or model (the model that answered, from each step's ``usage.by_model``); optionally of
        one tenant or run. ``UsageError`` for another grouping."""

    def artifacts(self, run_id: str, tenant_id: str | None = None) -> list[ArtifactRecord]:
        """The run's artifacts, ordered by (created_at, name); created_at is when it was committed; with
        ``tenant_id``, only that tenant's."""

    # -- audit and controls -----------------------------------------------------------------------

    def append_audit(self, event: str, run_id: str | None, data: dict[str, Any], *, at: str | None = None,
                     tenant_id: str = "default") -> None:
        """Append an audit entry (``at`` defaults to now); entries are never changed."""

    def audit(self, run_id: str | None = None, tenant_id: str | None = None) -> list[AuditRecord]:
        """Audit entries (of ``run_id`` and/or ``tenant_id``, or all), in the order they were appended (``seq``)."""

    def set_control(self, key: str, value: Any, tenant_id: str = "default") -> None:
        """Set a JSON control (e.g. ``emergency.pause_all``) for the tenant, replacing its value."""

    def get_control(self, key: str, default: Any = None, tenant_id: str = "default") -> Any:
        """The tenant's control ``key``, or ``default`` if it was never set."""

    # -- releases ---------------------------------------------------------------------------------

    def record_release(self, *, project_id: str, version: str, tag: str, commit_sha: str, changelog: str,
                       run_ids: list[str], tenant_id: str = "default") -> ReleaseRecord:
        """Record a release (its run ids sorted); idempotent per tag: recording a tag again changes
        nothing and returns the first record."""

    def releases(self, tenant_id: str | None = None) -> list[ReleaseRecord]:
        """Recorded releases (of ``tenant_id``, or all), newest first."""

    # -- tenants and quotas (``aigentflow.tenants``: ids and kinds are checked there) ------------

    def create_tenant(self, tenant_id: str, name: str) -> TenantRecord:
        """Register an active tenant; ``UsageError`` if it exists ('default' always does)."""

    def get_tenant(self, tenant_id: str) -> TenantRecord | None:
        """The tenant, or None if it was never registered."""

    def tenants(self) -> list[TenantRecord]:
        """Every registered tenant, 'default' included, by id."""

    def set_tenant_status(self, tenant_id: str, status: str) -> TenantRecord:
        """Make the tenant ``active`` or ``suspended``; ``UsageError`` for an unknown tenant."""

    def set_quota(self, tenant_id: str, kind: str, limit: float, period: str) -> QuotaRecord:
        """Set (or replace) the tenant's quota of ``kind`` per ``period``; ``StoreError`` for an unknown tenant."""

    def delete_quota(self, tenant_id: str, kind: str, period: str | None = None) -> int:
        """Remove the tenant's quotas of ``kind`` (of one ``period``, or all); how many were removed."""

    def quotas(self, tenant_id: str) -> list[QuotaRecord]:
        """The tenant's quotas, by (kind, period)."""

    def tenant_usage(self, tenant_id: str, since: str) -> TenantUsage:
        """Runs the tenant created at or after ``since`` (ISO, as the store writes times), and the model
        calls, tokens (in + out) and cost of its steps finished then (completed or failed)."""
