"""One detector per rule kind: what it reads (the run store, the traces, the evolution loop's incidents, the
switches) and the findings it makes. Findings carry ids of their evidence and secret-free facts only."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aigentflow.incidents.records import Finding
from aigentflow.incidents.rules import Rule
from aigentflow.redact import REDACTED, Redactor

FINISHED = ("COMPLETED", "FAILED", "CANCELLED")
SANDBOX_REFUSAL = "outside the sandbox root"
"""What ``SandboxRefused`` says of a working directory outside the worktree (``sandbox/executor.py``)."""


@dataclass
class Context:
    """What every detector reads, opened once per detection."""

    db: sqlite3.Connection
    state_dir: Path
    redactor: Redactor
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    _spans: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def since(self, rule: Rule) -> str:
        """The window's start as the store writes times (ISO, UTC); the epoch for a rule without a window."""
        if rule.window_s <= 0:
            return "0000"
        return (self.now - timedelta(seconds=rule.window_s)).isoformat(timespec="milliseconds")

    def spans(self, rule: Rule) -> list[dict[str, Any]]:
        """The signal spans of the rule's window (one read shared by the rules with the same window)."""
        start = 0 if rule.window_s <= 0 else int((self.now.timestamp() - rule.window_s) * 1e9)
        if start not in self._spans:
            from aigentflow.incidents.traces import signal_spans

            self._spans[start] = signal_spans(self.state_dir / "traces", start)
        return self._spans[start]

    def rows(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        return self.db.execute(sql, params).fetchall()


def _key(rule: Rule, *parts: str) -> str:
    return ":".join((rule.id, *parts))


def error_rate(rule: Rule, ctx: Context) -> list[Finding]:
    since = ctx.since(rule)
    by_tenant: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for r in ctx.rows("SELECT id, tenant_id, state FROM runs WHERE finished_at >= ? AND state IN (?,?,?)",
                      since, *FINISHED):
        by_tenant[r["tenant_id"]]["runs"].append(r["id"])
        if r["state"] == "FAILED":
            by_tenant[r["tenant_id"]]["runs_failed"].append(f"run:{r['id']}")
    for r in ctx.rows("SELECT run_id, step, attempt, tenant_id, status FROM steps WHERE finished_at >= ? "
                      "AND status IN ('completed', 'failed')", since):
        by_tenant[r["tenant_id"]]["steps"].append(r["step"])
        if r["status"] == "failed":
            by_tenant[r["tenant_id"]]["steps_failed"].append(f"step:{r['run_id']}/{r['step']}/{r['attempt']}")
    for span in ctx.spans(rule):
        if span["kind"] in ("agent", "model"):
            by_tenant[span["tenant_id"]]["spans"].append(span["span_id"])
            if span["status"] == "error":
                by_tenant[span["tenant_id"]]["spans_failed"].append(f"span:{span['span_id']}")
    findings = []
    for tenant, seen in sorted(by_tenant.items()):
        facts: dict[str, Any] = {"window_s": rule.window_s}
        shares = []
        for what in ("runs", "steps", "spans"):
            total, failed = len(seen[what]), len(seen[f"{what}_failed"])
            facts[what] = {"total": total, "failed": failed}
            if total >= rule.min_count:
                shares.append((failed / total, what))
        if not shares or max(shares)[0] < rule.threshold or max(shares)[0] == 0:
            continue
        share, what = max(shares)
        facts["share"] = round(share, 3)
        evidence = tuple(seen["runs_failed"] + seen["steps_failed"] + seen["spans_failed"])
        findings.append(Finding(rule.id, _key(rule, tenant), f"{share:.0%} of {what} failed in the last "
                                f"{_span(rule.window_s)} (tenant {tenant})", evidence, tenant, share, what, facts))
    return findings


def crash_loop(rule: Rule, ctx: Context) -> list[Finding]:
    since, limit = ctx.since(rule), max(rule.threshold, 2)
    findings = []
    resumes: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in ctx.rows("SELECT seq, run_id, tenant_id FROM transitions WHERE at >= ? AND event='RESUME'", since):
        resumes[(r["tenant_id"], r["run_id"])].append(f"transition:{r['seq']}")
    for (tenant, run_id), seqs in sorted(resumes.items()):
        if len(seqs) >= limit:
            findings.append(Finding(rule.id, _key(rule, "run", run_id), f"run {run_id} resumed {len(seqs)} times in "
                                    f"the last {_span(rule.window_s)}", tuple(seqs), tenant, len(seqs), "resumes",
                                    {"run_id": run_id, "resumes": len(seqs)}))
    failures: dict[tuple[str, str], list[str]] = defaultdict(list)
    runs: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in ctx.rows("SELECT run_id, step, attempt, tenant_id, role FROM steps WHERE finished_at >= ? "
                      "AND status='failed'", since):
        failures[(r["tenant_id"], r["role"])].append(f"step:{r['run_id']}/{r['step']}/{r['attempt']}")
        runs[(r["tenant_id"], r["role"])].add(r["run_id"])
    for (tenant, role), steps in sorted(failures.items()):
        if len(steps) >= limit:
            findings.append(Finding(rule.id, _key(rule, tenant, "role", role), f"the {role} failed {len(steps)} times "
                                    f"in the last {_span(rule.window_s)} ({len(runs[(tenant, role)])} runs)",
                                    tuple(steps), tenant, len(steps), "failures",
                                    {"role": role, "failures": len(steps), "runs": len(runs[(tenant, role)])}))
    return findings


def canary_regression(rule: Rule, ctx: Context) -> list[Finding]:
    """The evolution loop's rollbacks, read from ``.aigentflow/evolution.db`` as plain data (aigentflow never
    imports ``evolution``): each becomes an incident here, so `aigentflow incidents list` is the one list."""
    path = ctx.state_dir / "evolution.db"
    if not path.exists():
        return []
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        db.row_factory = sqlite3.Row
        if not db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='incidents'").fetchone():
            return []
        rows = db.execute("SELECT id, role, candidate, incumbent, percent, reason, at FROM incidents WHERE at >= ? "
                          "ORDER BY id", (ctx.since(rule),)).fetchall()
    return [Finding(rule.id, _key(rule, r["role"], r["candidate"]),
                    f"canary of {r['role']} {r['candidate']} rolled back at {r['percent']}%: {r['reason']}",
                    (f"evolution-incident:{r['id']}",), "default", float(r["percent"]), "",
                    {"role": r["role"], "candidate": r["candidate"], "incumbent": r["incumbent"],
                     "percent": r["percent"], "evolution_incident": r["id"], "at": r["at"]}) for r in rows]


def quota_exhausted(rule: Rule, ctx: Context) -> list[Finding]:
    """Audit entries named ``quota.exhausted`` (data: ``quota``, optional ``limit``/``used``): whatever
    enforces a quota records its refusals there."""
    seen: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in ctx.rows("SELECT seq, tenant_id, data_json FROM audit WHERE event='quota.exhausted' AND at >= ?",
                      ctx.since(rule)):
        quota = str(_data(r["data_json"]).get("quota") or "quota")
        seen[(r["tenant_id"], quota)].append(f"audit:{r['seq']}")
    return [Finding(rule.id, _key(rule, tenant, quota), f"{quota} exhausted for tenant {tenant}: {len(seqs)} "
                    f"refusals in the last {_span(rule.window_s)}", tuple(seqs), tenant, len(seqs), "",
                    {"quota": quota, "refusals": len(seqs)})
            for (tenant, quota), seqs in sorted(seen.items()) if len(seqs) >= rule.min_count]


def kill_switch(rule: Rule, ctx: Context) -> list[Finding]:
    findings = []
    for r in ctx.rows("SELECT tenant_id, key, value, updated_at FROM controls WHERE key LIKE 'emergency.%'"):
        if _data(r["value"]) is not True:
            continue
        facet = r["key"].removeprefix("emergency.")
        findings.append(Finding(rule.id, _key(rule, r["tenant_id"], facet),
                                f"kill switch {facet.replace('_', '-')} is on (since {r['updated_at']})",
                                (f"control:{r['key']}:{r['updated_at']}",), r["tenant_id"], 1, facet,
                                {"switch": facet, "since": r["updated_at"]}))
    switch = ctx.state_dir / "evolution" / "disabled.json"
    if switch.exists():
        try:
            since = str(json.loads(switch.read_text(encoding="utf-8")).get("at", ""))
        except (OSError, ValueError, AttributeError):
            since = "unknown"
        findings.append(Finding(rule.id, _key(rule, "default", "disable_evolution"),
                                f"kill switch disable-evolution is on (since {since})",
                                (f"file:evolution/disabled.json:{since}",), "default", 1, "disable_evolution",
                                {"switch": "disable_evolution", "since": since}))
    for r in ctx.rows("SELECT seq, tenant_id, at FROM audit WHERE event='admin.rollback' AND at >= ?",
                      ctx.since(rule)):
        findings.append(Finding(rule.id, _key(rule, r["tenant_id"], "rollback"), f"admin rollback at {r['at']}",
                                (f"audit:{r['seq']}",), r["tenant_id"], 1, "rollback", {"at": r["at"]}))
    return findings


def sandbox_escape(rule: Rule, ctx: Context) -> list[Finding]:
    seen: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for span in ctx.spans(rule):
        if span["kind"] != "command":
            continue
        attributes = span["attributes"]
        if int(attributes.get("aigentflow.command.leftover_processes") or 0) > 0:
            seen[span["tenant_id"]].append(("leftover_processes", f"span:{span['span_id']}"))
        elif attributes.get("aigentflow.command.killed_reason") == "process_limit":
            seen[span["tenant_id"]].append(("process_limit", f"span:{span['span_id']}"))
    for r in ctx.rows("SELECT run_id, step, attempt, tenant_id FROM steps WHERE finished_at >= ? AND error LIKE ?",
                      ctx.since(rule), f"%{SANDBOX_REFUSAL}%"):
        seen[r["tenant_id"]].append(("refused", f"step:{r['run_id']}/{r['step']}/{r['attempt']}"))
    for r in ctx.rows("SELECT seq, tenant_id FROM audit WHERE event IN ('sandbox.refused', 'sandbox.escape') "
                      "AND at >= ?", ctx.since(rule)):
        seen[r["tenant_id"]].append(("refused", f"audit:{r['seq']}"))
    findings = []
    for tenant, items in sorted(seen.items()):
        kinds = Counter(kind for kind, _ in items)
        findings.append(Finding(rule.id, _key(rule, tenant), "sandboxed commands tried to get out: " + ", ".join(
            f"{count} {kind.replace('_', ' ')}" for kind, count in sorted(kinds.items())), tuple(e for _, e in items),
            tenant, len(items), kinds.most_common(1)[0][0], {"by_kind": dict(kinds)}))
    return findings


def secret_found(rule: Rule, ctx: Context) -> list[Finding]:
    """A secret in the store (the redactor would change what was written: it got past redaction), one the
    redactor caught on a span (``[REDACTED]`` in it), one withheld from a prompt (``secret.withheld``)."""
    since = ctx.since(rule)
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    checks = (("SELECT id AS ref, tenant_id, error AS text FROM runs WHERE updated_at >= ? AND error IS NOT NULL",
               "run"),
              ("SELECT run_id || '/' || step || '/' || attempt AS ref, tenant_id, error AS text FROM steps "
               "WHERE finished_at >= ? AND error IS NOT NULL", "step"),
              ("SELECT seq AS ref, tenant_id, data_json AS text FROM audit WHERE at >= ? "
               "AND event NOT LIKE 'incident%'", "audit"))
    for sql, table in checks:
        for r in ctx.rows(sql, since):
            if not ctx.redactor.is_clean(r["text"] or ""):
                found[(r["tenant_id"], "in_store")].append(f"{table}:{r['ref']}")
    for span in ctx.spans(rule):
        if REDACTED in (span["error"] or "") or REDACTED in json.dumps(span["attributes"]):
            found[(span["tenant_id"], "redacted_in_trace")].append(f"span:{span['span_id']}")
    for r in ctx.rows("SELECT seq, tenant_id FROM audit WHERE event='secret.withheld' AND at >= ?", since):
        found[(r["tenant_id"], "withheld")].append(f"audit:{r['seq']}")
    words = {"in_store": "unredacted in the run store", "redacted_in_trace": "caught by the redactor in traces",
             "withheld": "withheld from prompts"}
    return [Finding(rule.id, _key(rule, tenant, facet), f"{len(items)} secret(s) {words[facet]} (tenant {tenant})",
                    tuple(items), tenant, len(items), facet, {"where": sorted({i.split(':')[0] for i in items}),
                                                              "count": len(items)})
            for (tenant, facet), items in sorted(found.items())]


DETECTORS: dict[str, Callable[[Rule, Context], list[Finding]]] = {
    "error_rate": error_rate, "crash_loop": crash_loop, "canary_regression": canary_regression,
    "quota_exhausted": quota_exhausted, "kill_switch": kill_switch, "sandbox_escape": sandbox_escape,
    "secret_found": secret_found,
}


def _data(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def _span(seconds: float) -> str:
    if seconds <= 0:
        return "history"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
