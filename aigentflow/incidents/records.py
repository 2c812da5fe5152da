"""The typed records of incident response: severities, incidents, their timeline events, findings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")
"""Most severe first. The criteria are in README.md ("Severity")."""
SEVERITY_CRITERIA = {
    "SEV1": "security boundary crossed or data exposed, or (nearly) all work failing: act now, page",
    "SEV2": "major degradation or work stopped for a tenant, a contained security event: act within the hour",
    "SEV3": "partial degradation with a working fallback: act within the working day",
    "SEV4": "informational: the system protected itself as designed; review when convenient",
}
STATUSES = ("open", "acknowledged", "resolved")
Status = Literal["open", "acknowledged", "resolved"]
EVENT_KINDS = ("detected", "re-detected", "escalated", "alerted", "silenced", "acknowledged", "resolved", "note",
               "runbook-step")


def rank(severity: str) -> int:
    """0 for SEV1 ... 3 for SEV4: lower is more severe."""
    return SEVERITIES.index(severity)


def worse(a: str, b: str) -> str:
    return a if rank(a) <= rank(b) else b


@dataclass(frozen=True)
class Finding:
    """What a detector saw: one condition (``dedup_key``) with the evidence for it.

    ``evidence`` are stable ids of what was seen (an audit seq, a run id, a span id): an incident is
    re-detected only when a finding brings evidence it has not seen, so detection is idempotent."""

    rule: str
    dedup_key: str
    title: str
    evidence: tuple[str, ...]
    tenant_id: str = "default"
    value: float = 0.0
    """The measure the rule's ``escalate`` thresholds are compared with (a share, a count, a percent)."""
    facet: str = ""
    """Which variant of the condition (``pause_all``, ``leftover_processes``): picks a severity by ``facets``."""
    facts: dict[str, Any] = field(default_factory=dict)
    """Plain, secret-free numbers and names shown with the incident and sent in alerts."""


@dataclass(frozen=True)
class TimelineEvent:
    seq: int
    incident_id: int
    kind: str
    at: str
    actor: str | None
    route: str | None
    result: str | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Incident:
    id: int
    tenant_id: str
    rule: str
    severity: str
    status: str
    title: str
    dedup_key: str
    count: int
    first_seen: str
    last_seen: str
    acked_by: str | None
    resolved_at: str | None
    facts: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
