"""The tenant isolation score: probes, through ``TenantView``, that no tenant sees another's rows.

For every registered tenant A (``default`` at least) and every other tenant B: none of B's run ids is in
A's run list, A's ``get_run``, ``steps``, ``transitions`` and ``artifacts`` of each of B's runs are
``NotFound``, none of B's audit rows is in A's audit, none of B's runs is in A's costs; and every row A's
view returns is A's. ``score`` = probes passed / probes made (1.0 when there was nothing to probe: one
tenant and no rows). The web UI's Enterprise dashboard shows it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aigentflow.tenants.scope import NotFound, TenantView

SAMPLE_RUNS = 100
"""Runs probed per tenant (its newest): the probes are a run's five reads for each other tenant."""


def measure(root: Path) -> dict[str, Any]:
    """``{"checked": n, "leaks": n, "score": fraction, "tenants": n}`` for the project at ``root``."""
    from aigentflow.project.paths import ProjectPaths
    from aigentflow.store.sqlite import SQLiteRunStore

    with SQLiteRunStore(ProjectPaths(Path(root)).database) as store:  # migrated if it must be (read only)
        return probe(store)


def probe(store: Any) -> dict[str, Any]:
    """The same over any ``RunStore``."""
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
    return {"checked": checked, "leaks": leaks, "score": (checked - leaks) / checked if checked else 1.0,
            "tenants": len(tenants)}
