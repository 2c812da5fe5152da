"""The tenant isolation score: probes, through ``TenantView``, that no tenant sees another's rows.

For every registered tenant A (``default`` at least) and every other tenant B: none of B's run ids is in
A's run list, A's ``get_run``, ``steps``, ``transitions`` and ``artifacts`` of each of B's runs are
``NotFound``, none of B's audit rows is in A's audit, none of B's runs is in A's costs; and every row A's
view returns is A's. Findings too (``patterns mine``): none of the runs a finding of A's gives as its evidence
may be another tenant's run. ``score`` = probes passed / probes made (1.0 when there was nothing to probe: one
tenant and no rows). The web UI's Enterprise dashboard shows it.

The findings are the evolution layer's (``.aigentflow/evolution.db``), which ``aigentflow`` never imports: this
reads that file's ``findings`` table with sqlite3, read-only, as data (its columns ``tenant_id`` and
``run_ids_json``; a table from before findings had a tenant holds only ``default``'s).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from aigentflow.tenants.scope import NotFound, TenantView

SAMPLE_RUNS = 100
"""Runs probed per tenant (its newest): the probes are a run's five reads for each other tenant."""
FINDINGS_DATABASE = "evolution.db"
"""The evolution layer's database, under the project's ``.aigentflow`` (read here as a file only)."""


def measure(root: Path) -> dict[str, Any]:
    """``{"checked": n, "leaks": n, "score": fraction, "tenants": n, "findings": n}`` for the project at
    ``root`` (``findings``: how many stored findings were probed)."""
    from aigentflow.project.paths import ProjectPaths
    from aigentflow.store.sqlite import SQLiteRunStore

    paths = ProjectPaths(Path(root))
    with SQLiteRunStore(paths.database) as store:  # migrated if it must be (read only)
        return probe(store, findings(paths.state_dir / FINDINGS_DATABASE))


def findings(database: Path) -> list[tuple[str, list[str]]]:
    """Each stored finding's (tenant, evidence run ids); none when nothing was mined."""
    if not database.exists():
        return []
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as db:
        try:
            columns = {row[1] for row in db.execute("PRAGMA table_info(findings)")}
            if not columns:
                return []
            tenant = "tenant_id" if "tenant_id" in columns else "'default'"
            rows = db.execute(f"SELECT {tenant}, run_ids_json FROM findings ORDER BY id").fetchall()
        except sqlite3.DatabaseError:
            return []
    return [(owner, [str(r) for r in json.loads(run_ids or "[]")]) for owner, run_ids in rows]


def probe(store: Any, stored_findings: Sequence[tuple[str, list[str]]] = ()) -> dict[str, Any]:
    """The same over any ``RunStore`` (and findings as ``findings`` reads them)."""
    tenants = [t.id for t in store.tenants()]
    views = {t: TenantView(store, t) for t in tenants}
    runs = {t: [r.id for r in views[t].list_runs(SAMPLE_RUNS)] for t in tenants}
    every_run = {t: {r.id: r.tenant_id for r in views[t].list_runs(-1)} for t in tenants}
    audit = {t: {e.seq: e.tenant_id for e in views[t].audit()} for t in tenants}
    costs = {t: {r["run_id"] for r in views[t].costs("run")} for t in tenants}
    checked = leaks = 0

    def check(ok: bool) -> None:
        nonlocal checked, leaks
        checked += 1
        leaks += 0 if ok else 1

    for mine in tenants:
        for owner in every_run[mine].values():
            check(owner == mine)
        for owner in audit[mine].values():
            check(owner == mine)
        for other in tenants:
            if other == mine:
                continue
            view = views[mine]
            for run_id in runs[other]:
                check(run_id not in every_run[mine])
                check(run_id not in costs[mine])
                for read in (view.get_run, view.steps, view.transitions, view.artifacts):
                    try:
                        read(run_id)
                    except NotFound:
                        check(True)
                    else:
                        check(False)
            check(not set(audit[other]) & set(audit[mine]))
    owner_of = {run_id: owner for runs_of in every_run.values() for run_id, owner in runs_of.items()}
    for tenant, run_ids in stored_findings:
        for run_id in run_ids:  # a run the store does not hold (spans only) is no other tenant's
            check(owner_of.get(run_id, tenant) == tenant)
    return {"checked": checked, "leaks": leaks, "score": (checked - leaks) / checked if checked else 1.0,
            "tenants": len(tenants), "findings": len(stored_findings)}
