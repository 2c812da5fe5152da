"""Consent records: per subject (its keyed hash) and purpose, given or withdrawn, newest wins.

Enforcement point (``check_request``, called by ``aigentflow.run.runner.plan_run`` before anything is
recorded): with ``gdpr.require_consent`` on, a run whose request names a subject is refused (a
``UsageError``: exit 2) unless that subject's latest record for ``gdpr.consent_purpose`` is "given".
A request names a subject when it contains an e-mail address (any address: without a record there is no
consent), or an identifier a consent record was made for (names and user ids are found by hashing the
request's words and runs of up to four words, so no identifier is ever kept in clear).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from aigentflow.exceptions import UsageError
from aigentflow.gdpr.requests import connect, now_iso
from aigentflow.gdpr.subject import keyed_hash, normalise, project_key

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_WORD = re.compile(r"[\w.@+-]+")
MAX_WORDS = 4


@dataclass
class ConsentState:
    subject_hash: str
    purpose: str
    given: bool
    at: str


def record(database: Path, state_dir: Path, subject: str, purpose: str, given: bool, tenant_id: str = "default"
           ) -> ConsentState:
    subject_hash = keyed_hash(project_key(state_dir), subject)
    at = now_iso()
    with connect(database) as connection:
        connection.execute("INSERT INTO consent (tenant_id, subject_hash, purpose, given, at) VALUES (?,?,?,?,?)",
                           (tenant_id, subject_hash, purpose, int(given), at))
    return ConsentState(subject_hash, purpose, given, at)


def states(database: Path, subject_hashes: set[str] | None = None) -> list[ConsentState]:
    """The latest record of each (subject, purpose)."""
    with connect(database) as connection:
        rows = connection.execute("SELECT subject_hash, purpose, given, at FROM consent WHERE seq IN "
                                  "(SELECT max(seq) FROM consent GROUP BY subject_hash, purpose) "
                                  "ORDER BY subject_hash, purpose").fetchall()
    return [ConsentState(r["subject_hash"], r["purpose"], bool(r["given"]), r["at"]) for r in rows
            if subject_hashes is None or r["subject_hash"] in subject_hashes]


def _candidates(text: str) -> set[str]:
    words = _WORD.findall(text)
    found = {" ".join(words[i:i + n]) for n in range(1, MAX_WORDS + 1) for i in range(len(words) - n + 1)}
    return {normalise(w.strip(".,;:")) for w in found} | {normalise(e) for e in EMAIL.findall(text)}


def check_request(database: Path, state_dir: Path, request: str, purpose: str) -> None:
    """Refuse (``UsageError``) a request naming a subject without consent for ``purpose``."""
    key = project_key(state_dir)
    hashes = {keyed_hash(key, c): c for c in _candidates(request)}
    latest = {s.subject_hash: s for s in states(database) if s.purpose == purpose}
    emails = {keyed_hash(key, e) for e in EMAIL.findall(request)}
    refused = []
    for subject_hash in sorted(set(hashes) & (set(latest) | emails)):
        state = latest.get(subject_hash)
        if state is None or not state.given:
            why = "withdrew consent" if state is not None else "has no consent record"
            refused.append(f"subject {subject_hash[:8]} {why} for {purpose!r}")
    if refused:
        raise UsageError("the request names a data subject without consent (gdpr.require_consent is on): "
                         + "; ".join(refused) + f". Record it with `aigentflow gdpr consent give SUBJECT --purpose "
                         f"{purpose}`, or remove the personal data from the request. Nothing was recorded.")
