"""``aigentflow vendors``: the register of model providers and services, and their SLA from the traces.

Quick and local: these commands read ``.aigentflow/vendors.json`` and the trace files, and never
import Ray or litellm.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aigentflow.cli.common import print_json, reports_errors

if TYPE_CHECKING:
    from aigentflow.enterprise.vendors.register import Register, Vendor

app = typer.Typer(help="Vendor security: the register of model providers and services, assessments, SLA.",
                  no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _root() -> Path:
    from aigentflow.project.paths import locate_project

    return locate_project(must_exist=False).root


def _register(root: Path) -> Register:
    from aigentflow.config.loader import load_config
    from aigentflow.enterprise.vendors.register import Register
    from aigentflow.enterprise.vendors.sla import provider_of_model
    from aigentflow.project.paths import ProjectPaths

    model = load_config(root).settings.model.name
    return Register.load(ProjectPaths(root).state_dir, provider_of_model(model))


def _line(vendor: Vendor) -> str:
    return (f"{vendor.id:<12} {vendor.status:<9} DPA {vendor.dpa:<10} SLA {vendor.sla:g}%  "
            f"{vendor.region:<12} {vendor.name}")


@app.command("list")
@reports_errors
def list_command(as_json: JsonOption = False) -> None:
    """Every vendor in the register: status, DPA, stated SLA, region (seeded until something is recorded)."""
    register = _register(_root())
    if as_json:
        print_json({"register": str(register.path), "stored": register.stored,
                    "vendors": [v.to_dict() for v in register.vendors]})
        return
    for vendor in register.vendors:
        typer.echo(_line(vendor))
    if not register.stored:
        typer.echo(f"(seeded: nothing recorded yet in {register.path})")


@app.command("show")
@reports_errors
def show(vendor_id: Annotated[str, typer.Argument(help="The vendor's id (see `vendors list`).")],
         as_json: JsonOption = False) -> None:
    """One vendor: the data it processes, its region, DPA, status, stated SLA and dated assessments."""
    vendor = _register(_root()).get(vendor_id)
    if as_json:
        print_json(vendor.to_dict())
        return
    typer.echo(f"{vendor.name} ({vendor.id}, {vendor.kind})")
    typer.echo(f"  status:         {vendor.status}")
    typer.echo(f"  DPA:            {vendor.dpa}")
    typer.echo(f"  region:         {vendor.region}")
    typer.echo(f"  stated SLA:     {vendor.sla:g}% of calls succeed"
               + (f", p95 under {vendor.p95_latency_ms:g} ms" if vendor.p95_latency_ms else ""))
    typer.echo(f"  providers:      {', '.join(vendor.providers) or '-'}")
    typer.echo(f"  data processed: {'; '.join(vendor.data_processed) or '-'}")
    typer.echo("  assessments:" + ("" if vendor.assessments else "    none yet"))
    for one in vendor.assessments:
        typer.echo(f"    {one.date} {one.status:<9} by {one.by}" + (f": {one.notes}" if one.notes else ""))


@app.command("add")
@reports_errors
def add(
    vendor_id: Annotated[str, typer.Argument(help="A short id: lower case letters, digits, '.', '_', '-'.")],
    name: Annotated[str, typer.Option(help="The vendor's name.")] = "",
    kind: Annotated[str, typer.Option(help="model-provider, service, self-hosted...")] = "service",
    provider: Annotated[list[str], typer.Option(help="A litellm provider whose calls are this vendor's.")] = [],  # noqa: B006
    data: Annotated[list[str], typer.Option(help="A kind of data the vendor processes (repeat).")] = [],  # noqa: B006
    region: Annotated[str, typer.Option(help="Where the data is processed.")] = "unknown",
    dpa: Annotated[str, typer.Option(help="Data processing agreement: yes, no or the date signed.")] = "no",
    status: Annotated[str, typer.Option(help="approved, pending or rejected.")] = "pending",
    sla: Annotated[float, typer.Option(help="Stated availability, percent of successful calls.")] = 99.9,
    p95_ms: Annotated[float | None, typer.Option("--p95-ms", help="Stated p95 latency (ms).")] = None,
) -> None:
    """Add a vendor to the register."""
    from aigentflow.enterprise.vendors.register import Vendor

    register = _register(_root())
    vendor = register.add(Vendor(vendor_id, name or vendor_id, kind, list(provider), list(data), region, dpa,
                                 status, sla, p95_ms))
    register.save()
    typer.echo(f"added {vendor.id} ({vendor.status}) to {register.path}")


@app.command("assess")
@reports_errors
def assess(
    vendor_id: Annotated[str, typer.Argument(help="The vendor's id.")],
    status: Annotated[str, typer.Option(help="The outcome: approved, pending or rejected.")],
    notes: Annotated[str, typer.Option(help="What was reviewed, what was found.")] = "",
    by: Annotated[str, typer.Option(help="Who assessed (default: the current user).")] = "",
    date: Annotated[str | None, typer.Option(help="When (YYYY-MM-DD; default today, UTC).")] = None,
    dpa: Annotated[str | None, typer.Option(help="Record the DPA: yes, no or the date signed.")] = None,
    sla: Annotated[float | None, typer.Option(help="Record the stated SLA (percent).")] = None,
    p95_ms: Annotated[float | None, typer.Option("--p95-ms", help="Record the stated p95 latency (ms).")] = None,
) -> None:
    """Record a dated assessment of a vendor: its new status (and DPA, stated SLA)."""
    import getpass

    register = _register(_root())
    vendor = register.assess(vendor_id, status, by=by or getpass.getuser(), notes=notes, date=date, dpa=dpa,
                             sla=sla, p95_latency_ms=p95_ms)
    register.save()
    typer.echo(f"{vendor.id}: {vendor.status} as of {vendor.assessments[-1].date}")


@app.command("sla")
@reports_errors
def sla_command(
    since: Annotated[str | None, typer.Option(help="Only calls since: 24h, 7d, or a date (2026-05-01).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Each vendor's model calls from the traces: calls, error rate, availability, p50/p95 latency, against
    its stated SLA (default 99.9%); exits 1 when a vendor is red."""
    from aigentflow.enterprise.vendors.sla import since_ns, sla_report
    from aigentflow.project.paths import ProjectPaths
    from aigentflow.tracing.reader import read_spans

    root = _root()
    start = since_ns(since)
    traces = ProjectPaths(root).traces_dir
    spans = read_spans(traces) if traces.is_dir() else []
    rows = sla_report(spans, _register(root), start)
    red = [r.vendor for r in rows if r.state == "red"]
    if as_json:
        print_json({"since": since, "traces": str(traces), "vendors": [r.to_dict() for r in rows], "red": red})
    else:
        typer.echo(f"{'vendor':<12} {'state':<8} {'calls':>6} {'errors':>6} {'avail%':>8} {'SLA%':>6} "
                   f"{'p50 ms':>9} {'p95 ms':>9}")
        for row in rows:
            data = row.to_dict()
            typer.echo(f"{row.vendor:<12} {row.state:<8} {row.calls:>6} {row.errors:>6} "
                       f"{data['availability']:>8.3f} {row.sla:>6g} {data['p50_ms']:>9.1f} {data['p95_ms']:>9.1f}"
                       + ("" if row.registered else "  (not in the register)"))
        if not any(r.calls for r in rows):
            typer.echo(f"no model calls recorded in {traces}" + (f" since {since}" if since else ""))
    if red:
        raise typer.Exit(1)
