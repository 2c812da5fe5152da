"""Phase 4 (Enterprise) rollback: disable multi-tenant routing, fall back to single-tenant, preserve data with
an export.

First each tenant's rows (every table of the run store with a ``tenant_id``: projects, runs, transitions,
steps, artifacts, audit, controls, model usage, DSARs, consent, ...) are exported, one file per tenant
(``rollback-enterprise-<time>-tenant-<id>.json``), named by the export's ``tenants``. Then the
``features.multiTenant`` flag goes off (through the flags layer, audited) and the single-tenant switch on
(``aigentflow.tenants.mode``: new runs go to the operator tenant, the HTTP API serves only it). The data stays
where it is: nothing is deleted, so the undo (the flag back as it was, the switch lifted if the rollback set
it) brings every tenant back exactly as it was.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from aigentflow.rollback import ENTERPRISE_FLAGS_OFF
from aigentflow.rollback import export as exports

PHASE = "enterprise"
REASON = "admin rollback enterprise"


def tenant_rows(database: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """tenant -> table -> its rows, for every table with a ``tenant_id`` column (a read-only connection)."""
    connection = sqlite3.connect(f"{Path(database).resolve().as_uri()}?mode=ro", uri=True)
    connection.row_factory = sqlite3.Row
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    try:
        tables = [r[0] for r in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        for table in tables:
            columns = {r[1] for r in connection.execute(f'PRAGMA table_info("{table}")')}
            if "tenant_id" not in columns:
                continue
            for row in connection.execute(f'SELECT * FROM "{table}" ORDER BY rowid'):
                record = dict(row)
                found.setdefault(record["tenant_id"], {}).setdefault(table, []).append(record)
    finally:
        connection.close()
    return found


def _slug(tenant: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", tenant)[:60] or "_"


def rollback(paths: Any) -> dict[str, Any]:
    from aigentflow.store.rows import now_iso
    from aigentflow.store.sqlite import SQLiteRunStore
    from aigentflow.tenants.mode import single_tenant_mode

    export = exports.new_export(paths, PHASE)
    changing = exports.flags_to_turn_off(paths, ENTERPRISE_FLAGS_OFF)
    store = SQLiteRunStore(paths.database)
    try:
        already = single_tenant_mode(store)
        tenants: dict[str, Any] = {}
        if changing or not already:  # the export, first: every tenant's rows, as they are
            for tenant, tables in sorted(tenant_rows(paths.database).items()):
                file = export.with_name(f"{export.stem}-tenant-{_slug(tenant)}.json")
                exports.write(file, {"tenant": tenant, "exported_at": now_iso(), "tables": tables})
                tenants[tenant] = {"file": str(file), "rows": {t: len(rows) for t, rows in tables.items()}}
            exports.write(export, {"phase": PHASE, "exported_at": now_iso(), "flags": changing,
                                   "switches_on": [] if already else ["single_tenant_mode"], "tenants": tenants})
        left = exports.flags_off(paths, changing, ENTERPRISE_FLAGS_OFF, REASON)
        if not already:
            exports.switch_on(paths, store, "single_tenant_mode", REASON)
        done = {"phase": PHASE, "export": str(export) if tenants or changing or not already else None,
                "tenants": tenants, "flags_off": sorted(changing), "flags_left_on": left,
                "single_tenant_mode": True, "was_single_tenant": already,
                "changed": bool(changing) or not already}
        store.append_audit("admin.rollback", None, done)
    finally:
        store.close()
    return done


def undo(paths: Any, path: Path) -> dict[str, Any]:
    from aigentflow.store.sqlite import SQLiteRunStore

    data = exports.read(path, PHASE)
    restored = exports.flags_restore(paths, data.get("flags") or {}, REASON)
    store = SQLiteRunStore(paths.database)
    try:
        lifted = exports.switches_off(paths, store, list(data.get("switches_on") or []), f"undo {REASON}")
        exports.mark_undone(path, data)
        done = {"phase": PHASE, "undo": True, "export": str(path), "flags_restored": restored,
                "switches_lifted": lifted}
        store.append_audit("admin.rollback.undone", None, done)
    finally:
        store.close()
    return done


def describe(done: dict[str, Any]) -> list[str]:
    if done.get("undo"):
        lines = [f"restored from {done['export']}: flags " + (", ".join(done["flags_restored"]) or "unchanged")]
        if "single_tenant_mode" in done["switches_lifted"]:
            lines.append("single-tenant-mode lifted: multi-tenant routing is back")
        return lines
    lines = []
    if done["export"]:
        lines.append(f"exported the rollback to {done['export']}")
    for tenant, each in done["tenants"].items():
        lines.append(f"tenant {tenant}: {sum(each['rows'].values())} rows exported to {each['file']} (kept in place)")
    lines += exports.flag_lines(dict.fromkeys(done["flags_off"]), done["flags_left_on"])
    lines.append("single-tenant-mode is ON" + (" (it already was)" if done["was_single_tenant"] else "")
                 + ": new runs go to the operator tenant, the API serves only it; "
                   "`aigentflow admin emergency --multi-tenant-mode` lifts it")
    if not done["changed"]:
        lines.append("already rolled back to single-tenant: nothing changed")
    else:
        lines.append(f"`aigentflow admin rollback {PHASE} --undo` restores multi-tenant routing")
    return lines
