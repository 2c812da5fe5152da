"""`aigentflow tenants`: the tenant registry and each tenant's quotas (``aigentflow/tenants/README.md``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from aigentflow.cli.common import print_json, reports_errors

app = typer.Typer(help="Tenants: register them, suspend them, set and read their quotas.", no_args_is_help=True)
quota_app = typer.Typer(help="A tenant's quotas: runs, tokens, cost per day/week/month; model calls per minute.",
                        no_args_is_help=True)
app.add_typer(quota_app, name="quota")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
TenantArg = Annotated[str, typer.Argument(help="The tenant's id (a lowercase slug, e.g. acme).")]


def _with_store(action: Callable[[Any], Any]) -> Any:
    from aigentflow.project.paths import locate_project
    from aigentflow.store.sqlite import SQLiteRunStore

    store = SQLiteRunStore(locate_project().database)
    try:
        return action(store)
    finally:
        store.close()


def _quota_report(store: Any, tenant_id: str) -> dict[str, Any]:
    from aigentflow.tenants.quotas import rate_limit, states
    from aigentflow.tenants.registry import require

    require(store, tenant_id)
    return {"tenant": tenant_id, "quotas": [q.to_dict() for q in states(store, tenant_id)],
            "calls_per_minute": rate_limit(store, tenant_id)}


def _show_quotas(report: dict[str, Any]) -> None:
    from aigentflow.tenants.quotas import QuotaState

    if not report["quotas"] and report["calls_per_minute"] is None:
        typer.echo(f"tenant {report['tenant']} has no quotas")
    for item in report["quotas"]:
        quota = QuotaState(item["kind"], item["limit"], item["period"], item["used"], item["starts_at"],
                           item["resets_at"])
        left = f"${quota.remaining:.4f}" if quota.kind == "cost_usd" else str(int(quota.remaining))
        flag = "  EXHAUSTED" if quota.exhausted else ""
        typer.echo(f"{quota.describe():<44} {left} left; resets at {quota.resets_at}{flag}")
    if report["calls_per_minute"] is not None:
        typer.echo(f"calls_per_minute {report['calls_per_minute']} (the Model Gateway's rate limit)")


@app.command("create")
@reports_errors
def create_cmd(tenant: TenantArg, name: Annotated[str | None, typer.Option("--name", help="A display name.")] = None,
               as_json: JsonOption = False) -> None:
    """Register a tenant (audited as tenant.created under it)."""
    from aigentflow.tenants.registry import create

    record = _with_store(lambda store: create(store, tenant, name))
    if as_json:
        print_json(record.to_dict())
    else:
        typer.echo(f"created tenant {record.id} ({record.name})")


@app.command("list")
@reports_errors
def list_cmd(as_json: JsonOption = False) -> None:
    """Every registered tenant ('default' included)."""
    records = _with_store(lambda store: store.tenants())
    if as_json:
        print_json([r.to_dict() for r in records])
        return
    for r in records:
        typer.echo(f"{r.id:<24} {r.status:<10} {r.created_at}  {r.name}")


@app.command("show")
@reports_errors
def show_cmd(tenant: TenantArg, as_json: JsonOption = False) -> None:
    """A tenant: its status, runs, usage and quotas."""
    from aigentflow.tenants.registry import require

    def read(store: Any) -> dict[str, Any]:
        record = require(store, tenant)
        costs = store.costs("tenant", tenant_id=tenant)
        return {**record.to_dict(), "runs": len(store.list_runs(-1, tenant_id=tenant)),
                "cost_usd": costs[0]["cost_usd"] if costs else 0.0, **_quota_report(store, tenant)}

    shown = _with_store(read)
    if as_json:
        print_json(shown)
        return
    typer.echo(f"tenant {shown['id']} ({shown['name']}): {shown['status']}, created {shown['created_at']}")
    typer.echo(f"runs: {shown['runs']}; cost so far: ${shown['cost_usd']:.4f}")
    _show_quotas(shown)


def _status_command(name: str, status: str, help_text: str) -> None:
    @app.command(name, help=help_text)
    @reports_errors
    def command(tenant: TenantArg) -> None:
        from aigentflow.tenants.registry import set_status

        record = _with_store(lambda store: set_status(store, tenant, status))
        typer.echo(f"tenant {record.id} is {record.status}")


_status_command("suspend", "suspended", "Suspend a tenant: its new runs and resumes are refused.")
_status_command("activate", "active", "Activate a suspended tenant.")


@quota_app.command("set")
@reports_errors
def quota_set(
    tenant: TenantArg,
    runs: Annotated[int | None, typer.Option("--runs", min=0, help="Runs per period.")] = None,
    tokens: Annotated[int | None, typer.Option("--tokens", min=0, help="Tokens (in + out) per period.")] = None,
    cost_usd: Annotated[float | None, typer.Option("--cost-usd", min=0, help="Dollars per period.")] = None,
    calls_per_minute: Annotated[int | None, typer.Option(
        "--calls-per-minute", min=1, help="Model calls per minute (the Model Gateway's rate limit).")] = None,
    period: Annotated[str | None, typer.Option("--period", help="day, week or month (UTC calendar periods).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Set quotas (audited as quota.set under the tenant); a quota of the same kind and period is replaced."""
    from aigentflow.exceptions import UsageError
    from aigentflow.tenants.registry import set_quota

    wanted = [(k, v) for k, v in (("runs", runs), ("tokens", tokens), ("cost_usd", cost_usd)) if v is not None]
    if not wanted and calls_per_minute is None:
        raise UsageError("say which quota: --runs N, --tokens N or --cost-usd X with --period day|week|month, "
                         "or --calls-per-minute N")
    if wanted and period is None:
        raise UsageError("--runs, --tokens and --cost-usd need --period day, week or month")
    if not wanted and period is not None:
        raise UsageError("--calls-per-minute is per minute: leave out --period")

    def write(store: Any) -> list[Any]:
        done = [set_quota(store, tenant, kind, value, period) for kind, value in wanted]
        if calls_per_minute is not None:
            done.append(set_quota(store, tenant, "calls_per_minute", calls_per_minute, None))
        return done

    records = _with_store(write)
    if as_json:
        print_json([r.to_dict() for r in records])
        return
    for r in records:
        typer.echo(f"tenant {r.tenant_id}: {r.kind} quota {r.limit:g} per {r.period}")


@quota_app.command("show")
@reports_errors
def quota_show(tenant: TenantArg, as_json: JsonOption = False) -> None:
    """Each quota's usage this period, what is left, and when it resets."""
    report = _with_store(lambda store: _quota_report(store, tenant))
    if as_json:
        print_json(report)
    else:
        _show_quotas(report)


@quota_app.command("unset")
@reports_errors
def quota_unset(
    tenant: TenantArg,
    kind: Annotated[str, typer.Argument(help="runs, tokens, cost_usd or calls_per_minute.")],
    period: Annotated[str | None, typer.Option("--period", help="Only the quota of this period.")] = None,
) -> None:
    """Remove a quota (audited as quota.unset under the tenant)."""
    from aigentflow.tenants.registry import unset_quota

    removed = _with_store(lambda store: unset_quota(store, tenant, kind, period))
    typer.echo(f"tenant {tenant}: removed {removed} {kind} quota(s)")
