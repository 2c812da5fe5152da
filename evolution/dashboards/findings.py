"""The pattern miner's stored findings (``evolution.patterns.store.read_findings``) as the UI shows them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

KINDS = ("failure", "intervention", "capability_gap", "routing")


def load_findings(project_root: Path, tenant: str | None = None) -> list[dict[str, Any]]:
    """Every stored finding (of one ``tenant``: a UsageError for an id that is not a tenant slug), highest
    score first; empty when nothing was mined yet."""
    from evolution.patterns.store import read_findings

    if tenant is not None:
        from aigentflow.tenants.registry import check_id

        check_id(tenant)
    return read_findings(project_root, tenant=tenant)


def tenants(project_root: Path) -> list[str]:
    """The tenants that have findings, for the page's filter."""
    from evolution.patterns.store import finding_tenants

    return sorted(finding_tenants(project_root))


def rows(findings: list[dict[str, Any]], shown_runs: int = 3) -> list[dict[str, Any]]:
    """What the findings table shows of each: its tenant, kind, title, count, score, when, and its evidence
    (a few runs to open, how many runs and spans in all)."""
    table = []
    for finding in findings:
        evidence = finding.get("evidence") or {}
        run_ids = list(evidence.get("run_ids") or [])
        table.append({
            "id": finding.get("id"), "tenant": finding.get("tenant_id", "default"), "kind": finding.get("kind", ""),
            "title": finding.get("title", ""),
            "count": finding.get("count", 0), "score": finding.get("score", 0.0),
            "first_seen": (finding.get("first_seen") or "")[:19].replace("T", " "),
            "last_seen": (finding.get("last_seen") or "")[:19].replace("T", " "),
            "runs": run_ids[:shown_runs], "more_runs": max(len(run_ids) - shown_runs, 0),
            "spans": len(evidence.get("span_ids") or []),
        })
    return table
