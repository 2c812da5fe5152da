"""Promotion criteria: a candidate version replaces the incumbent only when it has played at least
``evolution.minTournamentMatches`` (12) matches, its sigma is at most ``MAX_SIGMA``, and it is better
than the incumbent with probability at least ``CONFIDENCE`` (0.95, from both TrueSkill posteriors).
Otherwise it stays a candidate, with the reasons. ``evaluate`` is pure (the simulation runs it);
``decide`` reads the project's ratings and flags and records the decision: ``approved`` at once, or
``awaiting_approval`` when ``evolution.requireApproval`` (then ``approve``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UsageError
from evolution.tournament import store
from evolution.tournament.rating import Skill, p_better

MIN_MATCHES = 12
MAX_SIGMA = 5.0
"""Most uncertainty a promoted version may have left (a new one starts at 25/3 = 8.33)."""
CONFIDENCE = 0.95

_SCHEMA = """
CREATE TABLE IF NOT EXISTS promotions (
    role TEXT NOT NULL,
    version TEXT NOT NULL,
    incumbent TEXT NOT NULL,
    status TEXT NOT NULL,
    evidence_json TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    approved_at TEXT,
    PRIMARY KEY (role, version)
);
"""


@dataclass(frozen=True)
class Rated:
    version: str
    skill: Skill
    matches: int


@dataclass(frozen=True)
class Decision:
    promote: bool
    p_better: float
    reasons: list[str] = field(default_factory=list)


def evaluate(candidate: Rated, incumbent: Rated, *, min_matches: int = MIN_MATCHES, max_sigma: float = MAX_SIGMA,
             confidence: float = CONFIDENCE) -> Decision:
    """Whether ``candidate`` meets every criterion against ``incumbent``; the unmet ones as reasons."""
    chance = p_better(candidate.skill, incumbent.skill)
    reasons = []
    if candidate.matches < min_matches:
        reasons.append(f"{candidate.matches} matches played, at least {min_matches} needed")
    if candidate.skill.sigma > max_sigma:
        reasons.append(f"sigma {candidate.skill.sigma:.2f} is above {max_sigma}")
    if chance < confidence:
        reasons.append(f"P(better than {incumbent.version}) = {chance:.3f}, below {confidence}")
    return Decision(not reasons, chance, reasons)


def incumbent_version(paths: Any, role: str) -> str:
    """The version runs use now: ``agents.<role>.version`` in the configuration, else the built-in."""
    from aigentflow.config.loader import load_config
    from evolution.tournament.versions import playable

    chosen = load_config(paths.root).settings.agents.get(role)
    return chosen.version if chosen and chosen.version else playable(paths).registry.default(role).spec.version


def _rated(paths: Any, role: str, version: str) -> Rated:
    row = next((r for r in store.ratings(paths.root, role) if r["version"] == version), None)
    if row is None:
        raise UsageError(f"{role} {version} has no rating yet: play it first "
                         f"(`aigentflow tournament run --role {role} --versions ...`)")
    return Rated(version, Skill(row["mu"], row["sigma"]), row["matches"])


def decide(paths: Any, role: str, version: str) -> dict[str, Any]:
    """Evaluate ``version`` against the incumbent and record the outcome (exit 1 from the CLI when it
    stays a candidate; nothing is recorded then)."""
    from aigentflow.config.loader import load_config
    from evolution.tournament.versions import playable

    playable(paths).spec(role, version)  # an unknown role or version: a UsageError
    incumbent = incumbent_version(paths, role)
    if version == incumbent:
        raise UsageError(f"{role} {version} is already the version runs use")
    flags = load_config(paths.root).flags
    min_matches = int(flags.get("evolution.minTournamentMatches", MIN_MATCHES))
    decision = evaluate(_rated(paths, role, version), _rated(paths, role, incumbent), min_matches=min_matches)
    result = {"role": role, "version": version, "incumbent": incumbent, **asdict(decision),
              "criteria": {"min_matches": min_matches, "max_sigma": MAX_SIGMA, "confidence": CONFIDENCE}}
    if not decision.promote:
        return {**result, "status": "candidate"}
    status = "awaiting_approval" if flags.get("evolution.requireApproval", True) else "approved"
    with store.connect(paths.root) as db:
        db.executescript(_SCHEMA)
        db.execute("INSERT OR REPLACE INTO promotions VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (role, version, incumbent, status, json.dumps(result), store.now_iso(),
                    store.now_iso() if status == "approved" else None))
    return {**result, "status": status}


def approve(paths: Any, role: str, version: str) -> dict[str, Any]:
    """A human's approval of a promotion that awaits it."""
    row = promotion(Path(paths.root), role, version)
    if row is None or row["status"] != "awaiting_approval":
        state = row["status"] if row else "not promoted"
        raise UsageError(f"{role} {version} has no promotion awaiting approval ({state}); "
                         f"`aigentflow tournament promote {role} {version}` first")
    with store.connect(paths.root) as db:
        db.execute("UPDATE promotions SET status = 'approved', approved_at = ? WHERE role = ? AND version = ?",
                   (store.now_iso(), role, version))
    return {**row, "status": "approved"}


def promotion(project_root: Path, role: str, version: str) -> dict[str, Any] | None:
    with store.connect(project_root) as db:
        db.executescript(_SCHEMA)
        row = db.execute("SELECT * FROM promotions WHERE role = ? AND version = ?", (role, version)).fetchone()
    return dict(row) if row else None
