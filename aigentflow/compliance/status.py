"""Every control's state now: its automatic check, then its latest attestation (which alone decides an
attestation-only control, and is shown, with its expiry, on every other); and the compliance score."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aigentflow.compliance.checks import CHECKS, FAIL, NO_EVIDENCE, PASS, Context, Outcome
from aigentflow.compliance.controls import Control, load_controls
from aigentflow.compliance.records import Attestation, latest_attestations
from aigentflow.exceptions import AigentflowError
from aigentflow.project.paths import ProjectPaths

TARGET = 95.0
"""The rollout plan's compliance score target, percent."""


@dataclass(frozen=True)
class ControlStatus:
    control: Control
    outcome: Outcome
    attestation: Attestation | None

    @property
    def attestation_state(self) -> str:
        if self.attestation is None:
            return "none"
        return "expired" if self.attestation.expired() else "valid"

    def to_dict(self) -> dict[str, Any]:
        return {**self.control.to_dict(), "state": self.outcome.state, "reason": self.outcome.reason,
                "evidence": self.outcome.evidence, "attestation_state": self.attestation_state,
                "attestation": self.attestation.to_dict() if self.attestation else None}


@dataclass(frozen=True)
class Status:
    controls: list[ControlStatus]
    at: str
    seconds: float

    def count(self, state: str) -> int:
        return sum(1 for c in self.controls if c.outcome.state == state)

    @property
    def score(self) -> float | None:
        """Passing controls over controls with a decision (pass or fail), percent."""
        decided = self.count(PASS) + self.count(FAIL)
        return round(100.0 * self.count(PASS) / decided, 1) if decided else None

    @property
    def coverage_score(self) -> float:
        """Passing controls over all controls ("no evidence" counting as not passing), percent."""
        return round(100.0 * self.count(PASS) / len(self.controls), 1) if self.controls else 0.0

    @property
    def meets_target(self) -> bool:
        return self.score is not None and self.score > TARGET

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "seconds": round(self.seconds, 3), "target_percent": TARGET,
                "score_percent": self.score, "score_with_no_evidence_percent": self.coverage_score,
                "meets_target": self.meets_target,
                "counts": {state: self.count(state) for state in (PASS, FAIL, NO_EVIDENCE)},
                "controls": [c.to_dict() for c in self.controls]}


def _decide(control: Control, ctx: Context, attestation: Attestation | None) -> Outcome:
    if control.check == "attestation":
        if attestation is None:
            return Outcome(NO_EVIDENCE, "no attestation yet (`aigentflow compliance attest " + control.id + "`)")
        if attestation.expired():
            return Outcome(NO_EVIDENCE, f"attestation by {attestation.attested_by} expired on "
                                        f"{attestation.expires_at}", [f"attestation #{attestation.id}"])
        until = f" until {attestation.expires_at}" if attestation.expires_at else ""
        return Outcome(PASS, f"attested by {attestation.attested_by} on {attestation.attested_at[:10]}{until}",
                       [f"attestation #{attestation.id}"])
    try:
        return CHECKS[control.check](ctx)
    except (AigentflowError, OSError, sqlite3.Error) as exc:
        return Outcome(NO_EVIDENCE, f"could not check: {exc}")


def compute(paths: ProjectPaths, conn: sqlite3.Connection, controls: list[Control] | None = None) -> Status:
    started = time.perf_counter()
    ctx = Context(paths, conn)
    attested = latest_attestations(conn)
    statuses = []
    for control in controls or load_controls():
        attestation = attested.get(control.id)
        statuses.append(ControlStatus(control, _decide(control, ctx, attestation), attestation))
    return Status(statuses, datetime.now(UTC).isoformat(timespec="seconds"), time.perf_counter() - started)
