"""``mine``: bring the span facts up to date, ask every query class of each tenant's rows separately, store
the findings. A finding belongs to exactly one tenant: a pattern seen in two tenants' runs is two findings,
each with only its own tenant's count, score and evidence."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evolution.patterns import facts, queries, sources, store

_COLUMNS = ("kind", "key", "title", "count", "first_ns", "last_ns", "score", "span_ids", "run_ids", "details")


def iso(ns: int | None) -> str:
    if ns is None:
        return ""
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds")


def _finding(tenant: str, row: tuple[Any, ...]) -> dict[str, Any]:
    import json

    values = dict(zip(_COLUMNS, row, strict=True))
    return {
        "tenant_id": tenant, "kind": values["kind"], "key": values["key"], "title": values["title"],
        "count": int(values["count"]),
        "first_seen": iso(values["first_ns"]), "last_seen": iso(values["last_ns"]),
        "score": round(float(values["score"]), 4),
        "evidence": {"span_ids": list(values["span_ids"] or []), "run_ids": list(values["run_ids"] or [])},
        "details": json.loads(values["details"]),
    }


def find(connection: Any, project_root: Path, since_ns: int | None = None,
         tenant: str | None = None) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Every finding in the project's facts and store (from ``since_ns`` on), each tenant's (only
    ``tenant``'s, if given) from that tenant's rows alone, and the seconds each query class took (summed
    over the tenants); the facts must be up to date (``facts.update_facts``)."""
    started = time.perf_counter()
    sources.load(connection, project_root, since_ns)
    connection.execute(queries.MACROS)
    timings = {"load": round(time.perf_counter() - started, 3)}
    found: list[dict[str, Any]] = []
    present = sources.tenants(connection)
    for name in [tenant] if tenant is not None else present:
        sources.scope(connection, name, alone=present == [name])
        connection.execute("""
            CREATE OR REPLACE TEMP TABLE run_total AS
            SELECT greatest(1, coalesce(nullif((SELECT count(*) FROM runs), 0),
                                        (SELECT count(DISTINCT run_id) FROM spans WHERE kind = 'run'))) AS n
        """)
        for kind, sql in queries.QUERY_CLASSES.items():
            started = time.perf_counter()
            found += [_finding(name, row) for row in connection.execute(sql).fetchall()]
            timings[kind] = round(timings.get(kind, 0.0) + time.perf_counter() - started, 3)
    found.sort(key=lambda f: (-f["score"], -f["count"], f["tenant_id"], f["kind"], f["key"]))
    return found, timings


MEMORY_LIMIT = "2GB"
"""DuckDB's own default is 80% of the machine's memory; the miner shares it with runs (and spills to disk)."""


def connect(facts_directory: Path) -> Any:
    """An in-memory DuckDB connection held to ``MEMORY_LIMIT``, spilling under the facts directory."""
    import duckdb

    return duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "temp_directory": str(facts_directory / "spill")})


def mine(project_root: Path, since_ns: int | None = None, tenant: str | None = None) -> dict[str, Any]:
    """Mine the project at ``project_root`` and store what was found (``.aigentflow/evolution.db``): every
    tenant, each separately, or only ``tenant`` (a UsageError, before anything is written, for a tenant the
    store does not know).

    Returns ``{"findings": [...], "stored": {"new", "updated"}, "timings_s": {...}, "facts": {...},
    "tenants": [...]}``."""
    project_root = Path(project_root)
    if tenant is not None:
        check_tenant(project_root, tenant, "nothing was mined")
    directory = facts.facts_dir(project_root)
    with facts.facts_lock(directory):
        connection = connect(directory)
        try:
            extracted = facts.update_facts(connection, project_root)
            found, timings = find(connection, project_root, since_ns, tenant)
        finally:
            connection.close()
    stored = store.write_findings(project_root, found, partial=since_ns is not None)
    return {"findings": found, "stored": stored, "timings_s": timings, "facts": extracted,
            "tenants": sorted({f["tenant_id"] for f in found} | ({tenant} if tenant else set()))}


def check_tenant(project_root: Path, tenant: str, consequence: str, also: set[str] | None = None) -> str:
    """``tenant`` if it is a tenant of the project (registered, or runs recorded under it; ``also``: other
    tenants to accept), else a UsageError naming the tenants there are and ``consequence``."""
    from aigentflow.exceptions import UsageError
    from aigentflow.tenants.registry import check_id

    check_id(tenant)
    known = sources.known_tenants(project_root) | (also or set())
    if tenant not in known:
        raise UsageError(f"there is no tenant {tenant!r} in this project; tenants are: {', '.join(sorted(known))} "
                         f"(`aigentflow tenants list`); {consequence}.")
    return tenant
