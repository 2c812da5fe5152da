"""`aigentflow audit`: the project's audit log (run events, admin switches, flag changes), oldest first."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from aigentflow.cli.common import print_json, reports_errors


@reports_errors
def audit(
    event: Annotated[str | None, typer.Option(
        "--event", help="Only events starting with this, e.g. flag. or run.created.")] = None,
    run: Annotated[str | None, typer.Option("--run", help="Only this run's entries.")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's entries.")] = None,
    last: Annotated[int | None, typer.Option("--last", min=1, help="Only the last N entries.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the audit log: who changed what (flags, admin switches) and every run's events."""
    from aigentflow.cli.plain import echo
    from aigentflow.project.paths import locate_project
    from aigentflow.store.sqlite import SQLiteRunStore

    store = SQLiteRunStore(locate_project().database)
    try:
        if tenant is not None:
            from aigentflow.tenants.registry import require

            require(store, tenant)
        entries = [e for e in store.audit(run, tenant_id=tenant) if event is None or e.event.startswith(event)]
    finally:
        store.close()
    entries = entries[-last:] if last else entries
    if as_json:
        print_json([entry.to_dict() for entry in entries])
        return
    for e in entries:
        echo(f"{e.seq}  {e.at}  {e.tenant_id}  {e.event}  {e.run_id or '-'}  {_summary(e.event, e.data)}")


def _summary(event: str, data: dict[str, Any]) -> str:
    """An entry's data on one line: a flag change as who, which flag, old -> new; others as JSON."""
    import json

    if event == "flag.changed" and {"by", "key", "change"} <= set(data):
        def shown(value: Any) -> str:
            return "(unset)" if value is None else json.dumps(value, sort_keys=True, default=str)

        return f"{data['by']} changed {data['key']} {data['change']}: {shown(data.get('old'))} -> " \
               f"{shown(data.get('new'))}"
    return json.dumps(data, sort_keys=True, default=str)
