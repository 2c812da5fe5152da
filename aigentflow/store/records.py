"""Typed records of the run store. Plain dataclasses: ``aigentflow status`` must import fast.

Importing this module still takes ~8 ms: not pydantic (there is none here) but the dataclasses, whose
methods (``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, and the frozen ``__setattr__`` and
``__delattr__``) Python 3.11 writes as source and compiles with ``exec``: 42 compilations for these
seven classes, half of them for ``frozen``. They stay frozen dataclasses (the engine uses
``dataclasses.replace`` on them, Ray pickles them, tests compare them).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aigentflow.config.settings import Settings

_ATOMS = frozenset({str, int, float, bool, type(None)})


def _copied(value: Any) -> Any:
    """``value`` as ``dataclasses.asdict`` copies it, but quicker for JSON data (what records hold):
    asdict ``copy.deepcopy``s every string and number (for the demo's run, `aigentflow status` spent
    ~6 ms in it; this takes under 1 ms)."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is dict:
        return {_copied(k): _copied(v) for k, v in value.items()}
    if kind is list:
        return [_copied(v) for v in value]
    if kind is tuple:
        return tuple(_copied(v) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    import copy

    return copy.deepcopy(value)


def as_dict(record: Any) -> dict[str, Any]:
    """``dataclasses.asdict(record)`` for a record of this module."""
    return {f.name: _copied(getattr(record, f.name)) for f in fields(record)}


@dataclass(frozen=True)
class RunRecord:
    """One run of a feature request through the state machine."""

    id: str
    tenant_id: str
    project_id: str
    request: str
    model: str
    state: str
    return_to: str | None
    version: int
    created_at: str
    updated_at: str
    finished_at: str | None
    error: str | None
    settings: dict[str, Any]
    flags: dict[str, Any]
    owner_pid: int | None
    owner_host: str | None
    heartbeat_at: str | None
    pause_requested: bool
    model_calls: int

    def to_dict(self) -> dict[str, Any]:
        return as_dict(self)

    @cached_property
    def config(self) -> Settings:
        """``settings`` typed: the ``Settings`` the run was recorded with; a section or key an older version
        did not record has its default, and one this version no longer knows is ignored (see
        ``Settings.from_stored``). Imports pydantic: commands that must not (``status``) read ``settings``."""
        from aigentflow.config.settings import Settings

        return Settings.from_stored(self.settings)

    def owner_alive_here(self) -> bool:
        """Whether the process recorded as the run's owner is alive on this host (not a zombie, not us)."""
        import os
        import socket

        pid = self.owner_pid
        if not pid or pid == os.getpid() or self.owner_host != socket.gethostname():
            return False
        return process_alive(pid)


@dataclass(frozen=True)
class TransitionRecord:
    """One entry of a run's append-only event log."""

    seq: int
    run_id: str
    from_state: str | None
    to_state: str
    event: str
    reason: str | None
    at: str

    def to_dict(self) -> dict[str, Any]:
        return as_dict(self)


@dataclass(frozen=True)
class StepRecord:
    """One execution of a step; (run_id, step, attempt) is its idempotency key."""

    run_id: str
    step: str
    attempt: int
    role: str
    state: str
    status: str  # started | completed | failed
    output: dict[str, Any] | None
    error: str | None
    started_at: str
    finished_at: str | None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    model_calls: int = 0
    prompt_hashes: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.run_id, self.step, self.attempt)

    def to_dict(self) -> dict[str, Any]:
        return as_dict(self)


@dataclass(frozen=True)
class ArtifactRecord:
    """A file a step wrote under ``.aigentflow/runs/<run_id>/``."""

    run_id: str
    step: str
    name: str
    path: str
    sha256: str
    bytes: int
    created_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return as_dict(self)


@dataclass(frozen=True)
class AuditRecord:
    """One lifecycle event, as written by the built-in audit-log hook."""

    seq: int
    tenant_id: str
    run_id: str | None
    event: str
    at: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return as_dict(self)


@dataclass(frozen=True)
class ReleaseRecord:
    """One release: the tag on the integration branch and the changelog section written for it."""

    id: str
    tenant_id: str
    project_id: str
    version: str
    tag: str
    commit_sha: str
    changelog: str
    run_ids: list[str]
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return as_dict(self)


@dataclass(frozen=True)
class ModelUsage:
    """What one model's calls of a step consumed (the model that answered: a fallback counts as itself)."""

    model: str
    provider: str = ""
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class StepUsage:
    """What a step's model calls consumed."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    model_calls: int = 0
    prompt_hashes: list[str] = field(default_factory=list)
    by_model: list[ModelUsage] = field(default_factory=list)


@dataclass(frozen=True)
class TenantRecord:
    """A registered tenant (``aigentflow tenants``): whose projects, runs and audit rows they are."""

    id: str
    name: str
    status: str
    """``active`` or ``suspended`` (a suspended tenant's runs are refused)."""
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class QuotaRecord:
    """One quota of a tenant: at most ``limit`` of ``kind`` per ``period``."""

    tenant_id: str
    kind: str
    """``runs``, ``tokens``, ``cost_usd`` (per day, week or month) or ``calls_per_minute``."""
    limit: float
    period: str
    """``day``, ``week``, ``month`` (UTC calendar periods), or ``minute`` for ``calls_per_minute``."""
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TenantUsage:
    """What a tenant used since a time: runs created, and the model calls, tokens and cost of steps finished."""

    runs: int = 0
    model_calls: int = 0
    tokens: int = 0
    cost_usd: float = 0.0


COST_GROUPS = ("run", "tenant", "model", "step")
"""How `aigentflow costs --by` groups: run, tenant and step from the steps' totals (every step, failed
ones too: what a failed call cost was paid), model from the per-model usage of each step."""


def cost_row(row: dict[str, Any]) -> dict[str, Any]:
    """A ``costs`` row: its group's keys, then calls, tokens and cost (USD, to the nano-dollar)."""
    for key in ("model_calls", "input_tokens", "output_tokens"):
        row[key] = int(row.get(key) or 0)
    row["cost_usd"] = round(float(row.get("cost_usd") or 0.0), 9)
    return row


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this node is alive (a zombie is not: its parent has yet to reap it)."""
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True
