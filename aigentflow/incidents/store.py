"""Incidents in the project's state database (tables of migration 3): open, re-detect, alert, ack, resolve.

Every change appends to the incident's timeline (``incident_events``) in the same transaction. Text that
reaches these tables is redacted first (``aigentflow.redact``): a finding or a failed delivery's error may
quote a URL or a server's reply."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aigentflow.exceptions import UsageError
from aigentflow.incidents.records import SEVERITIES, Finding, Incident, TimelineEvent, rank
from aigentflow.redact import Redactor
from aigentflow.store.rows import now_iso
from aigentflow.store.sqlite import BUSY_TIMEOUT_MS, SQLiteRunStore


class UnknownIncident(UsageError):
    """No incident has that id."""


class IncidentStore:
    """The incident tables of the state database at ``path`` (migrated on open, as the run store does)."""

    def __init__(self, path: Path | str, redactor: Redactor | None = None) -> None:
        SQLiteRunStore(path).close()  # says clearly when there is no database; applies migrations
        self.path = Path(path)
        self.redactor = redactor or Redactor.from_environment()
        self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                                     check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _event(self, conn: sqlite3.Connection, incident_id: int, kind: str, detail: str = "", *,
               actor: str | None = None, route: str | None = None, result: str | None = None,
               at: str | None = None) -> None:
        conn.execute(
            "INSERT INTO incident_events (incident_id, kind, at, actor, route, result, detail) VALUES (?,?,?,?,?,?,?)",
            (incident_id, kind, at or now_iso(), actor, route, result, self.redactor.redact_text(detail)),
        )

    # -- detection ------------------------------------------------------------------------------

    def record(self, finding: Finding, severity: str) -> tuple[Incident, str] | None:
        """Open an incident for ``finding`` or re-detect the open one with its key; None when the finding
        brings no evidence not seen before (detection is idempotent). The second value says what
        happened: ``detected``, ``re-detected`` or ``escalated`` (re-detected at a higher severity)."""
        stamp = now_iso()
        facts = self.redactor.redact(finding.facts)
        title = self.redactor.redact_text(finding.title)
        with self._write() as conn:
            seen = {row[0] for row in conn.execute(
                "SELECT evidence FROM incident_evidence WHERE dedup_key=?", (finding.dedup_key,))}
            new = [item for item in dict.fromkeys(finding.evidence) if item not in seen]
            if not new:
                return None
            row = conn.execute("SELECT * FROM incidents WHERE dedup_key=? AND status!='resolved' ORDER BY id DESC"
                               " LIMIT 1", (finding.dedup_key,)).fetchone()
            shown = ", ".join(new[:5]) + (f" (+{len(new) - 5} more)" if len(new) > 5 else "")
            if row is None:
                cursor = conn.execute(
                    "INSERT INTO incidents (tenant_id, rule, severity, status, title, dedup_key, count, first_seen,"
                    " last_seen, facts_json) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (finding.tenant_id, finding.rule, severity, "open", title, finding.dedup_key, 1, stamp, stamp,
                     json.dumps(facts, sort_keys=True, default=str)),
                )
                incident_id, what = int(cursor.lastrowid or 0), "detected"
                self._event(conn, incident_id, what, f"{severity}: {title}; evidence {shown}", at=stamp)
            else:
                incident_id = int(row["id"])
                raised = rank(severity) < rank(row["severity"])
                what = "escalated" if raised else "re-detected"
                conn.execute("UPDATE incidents SET count=count+1, last_seen=?, title=?, facts_json=?, severity=? "
                             "WHERE id=?", (stamp, title, json.dumps(facts, sort_keys=True, default=str),
                                            severity if raised else row["severity"], incident_id))
                detail = f"{row['severity']} -> {severity}: " if raised else ""
                self._event(conn, incident_id, what, f"{detail}{title}; new evidence {shown}", at=stamp)
            conn.executemany("INSERT INTO incident_evidence VALUES (?,?,?,?)",
                             [(finding.dedup_key, item, incident_id, stamp) for item in new])
        return self.get(incident_id), what

    # -- reading --------------------------------------------------------------------------------

    def get(self, incident_id: int | str) -> Incident:
        try:
            number = int(str(incident_id).removeprefix("INC-").removeprefix("inc-"))
        except ValueError:
            raise UnknownIncident(f"{incident_id!r} is not an incident id; `aigentflow incidents list` shows them.")\
                from None
        row = self._conn.execute("SELECT * FROM incidents WHERE id=?", (number,)).fetchone()
        if row is None:
            raise UnknownIncident(f"no incident {incident_id}; `aigentflow incidents list` shows them.")
        return _incident(row)

    def list(self, status: str | None = None, severity: str | None = None, rule: str | None = None,
             limit: int = 200) -> list[Incident]:
        where, params = [], []
        for column, value in (("status", status), ("severity", severity), ("rule", rule)):
            if value:
                where.append(f"{column}=?")
                params.append(value)
        sql = "SELECT * FROM incidents" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*params, limit)).fetchall()
        return [_incident(r) for r in rows]

    def timeline(self, incident_id: int) -> list[TimelineEvent]:
        rows = self._conn.execute("SELECT * FROM incident_events WHERE incident_id=? ORDER BY seq", (incident_id,))
        return [TimelineEvent(r["seq"], r["incident_id"], r["kind"], r["at"], r["actor"], r["route"], r["result"],
                              r["detail"]) for r in rows]

    # -- people ---------------------------------------------------------------------------------

    def acknowledge(self, incident_id: int | str, by: str) -> Incident:
        incident = self.get(incident_id)
        if incident.status == "resolved":
            raise UsageError(f"INC-{incident.id} is resolved; there is nothing to acknowledge.")
        with self._write() as conn:
            conn.execute("UPDATE incidents SET status='acknowledged', acked_by=? WHERE id=?", (by, incident.id))
            self._event(conn, incident.id, "acknowledged", f"acknowledged by {by}", actor=by)
        return self.get(incident.id)

    def resolve(self, incident_id: int | str, by: str, note: str = "") -> Incident:
        incident = self.get(incident_id)
        if incident.status == "resolved":
            raise UsageError(f"INC-{incident.id} is already resolved (at {incident.resolved_at}).")
        with self._write() as conn:
            conn.execute("UPDATE incidents SET status='resolved', resolved_at=? WHERE id=?", (now_iso(), incident.id))
            self._event(conn, incident.id, "resolved", note or f"resolved by {by}", actor=by)
        return self.get(incident.id)

    def note(self, incident_id: int, kind: str, detail: str, *, actor: str | None = None,
             route: str | None = None, result: str | None = None) -> None:
        with self._write() as conn:
            self._event(conn, incident_id, kind, detail, actor=actor, route=route, result=result)

    # -- alerts and silences --------------------------------------------------------------------

    def claim_alert(self, incident_id: int, route: str, severity: str, stale_s: float = 300) -> bool:
        """Whether this process should alert ``route`` of the incident at ``severity``: no delivery (nor another
        process's sending, for ``stale_s``) at this severity or worse yet. Claimed in one transaction, so two
        detections at once send one alert. The claim is the timeline's ``alerted ... sending`` entry."""
        from datetime import UTC, datetime, timedelta

        fresh = (datetime.now(UTC) - timedelta(seconds=stale_s)).isoformat(timespec="milliseconds")
        with self._write() as conn:
            rows = conn.execute(
                "SELECT detail FROM incident_events e WHERE incident_id=? AND kind='alerted' AND route=? AND"
                " (result='delivered' OR (result='sending' AND at>? AND NOT EXISTS (SELECT 1 FROM incident_events f"
                " WHERE f.incident_id=e.incident_id AND f.route=e.route AND f.seq>e.seq AND f.result='failed')))",
                (incident_id, route, fresh)).fetchall()
            levels = [r["detail"].split()[0] for r in rows if r["detail"].split()[:1] and
                      r["detail"].split()[0] in SEVERITIES]
            if levels and rank(min(levels, key=rank)) <= rank(severity):
                return False
            self._event(conn, incident_id, "alerted", f"{severity} sending", route=route, result="sending")
        return True

    def failed_deliveries(self, incident_id: int, route: str) -> int:
        row = self._conn.execute("SELECT count(*) FROM incident_events WHERE incident_id=? AND kind='alerted' AND "
                                 "route=? AND result='failed'", (incident_id, route)).fetchone()
        return int(row[0])

    def silence(self, rule: str, until: str, by: str, reason: str = "") -> int:
        with self._write() as conn:
            cursor = conn.execute("INSERT INTO incident_silences (rule, until, created_by, reason, created_at) "
                                  "VALUES (?,?,?,?,?)", (rule, until, by, reason, now_iso()))
            return int(cursor.lastrowid or 0)

    def silenced_until(self, rule: str, at: str) -> str | None:
        row = self._conn.execute("SELECT max(until) FROM incident_silences WHERE (rule=? OR rule='*') AND until>?",
                                 (rule, at)).fetchone()
        return row[0] if row and row[0] else None

    def silences(self, at: str) -> list[dict[str, Any]]:
        rows = self._conn.execute("SELECT * FROM incident_silences WHERE until>? ORDER BY until", (at,))
        return [dict(r) for r in rows]


def _incident(row: sqlite3.Row) -> Incident:
    return Incident(row["id"], row["tenant_id"], row["rule"], row["severity"], row["status"], row["title"],
                    row["dedup_key"], row["count"], row["first_seen"], row["last_seen"], row["acked_by"],
                    row["resolved_at"], json.loads(row["facts_json"]))
