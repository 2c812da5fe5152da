"""``aigentflow patterns mine|list``: thin wiring around ``miner.mine`` and ``store.read_findings``.

Registered through the ``aigentflow.commands`` entry point; imports neither Ray nor litellm."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from aigentflow.cli.common import print_json, reports_errors

app = typer.Typer(
    help="Find recurring failures, human interventions, capability gaps and routing inefficiencies in "
         "the project's traces and run store.",
    no_args_is_help=True, rich_markup_mode=None, add_completion=False,
)

KINDS = ("failure", "intervention", "capability_gap", "routing")



def parse_since(text: str) -> int:
    """``--since`` as epoch nanoseconds: a date (``2026-05-01``, midnight UTC) or an ISO 8601 time."""
    from aigentflow.exceptions import UsageError

    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--since {text!r} is not a date; give one as YYYY-MM-DD (UTC) or an ISO 8601 "
                         "time such as 2026-05-01T12:00:00+00:00. Nothing was mined.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1e9)


def _print(findings: list[dict[str, Any]], heading: str) -> None:
    from aigentflow.cli.plain import echo, table

    if not findings:
        echo("no findings")
        return
    rows = [(f["tenant_id"], f["kind"], str(f["count"]), f"{f['score']:.2f}", f["last_seen"][:16].replace("T", " "),
             f["title"]) for f in findings]
    echo(table(("tenant", "kind", "count", "score", "last seen", "finding"), rows, title=heading, flexible=(5,)))


TenantOption = Annotated[str | None, typer.Option(
    help="Only this tenant's findings (default: every tenant's, each mined from its own runs alone).")]


@app.command()
@reports_errors
def mine(
    since: Annotated[str | None, typer.Option(help="Only what happened from this date (YYYY-MM-DD, UTC) on.")] = None,
    tenant: TenantOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the findings and timings as JSON.")] = False,
) -> None:
    """Mine the traces and run store of the project here, each tenant's separately; store the findings
    (each its tenant's) in .aigentflow/evolution.db."""
    from aigentflow.project.paths import locate_project
    from evolution.patterns.miner import mine as run_miner

    since_ns = parse_since(since) if since is not None else None
    from evolution.rollout.switches import refuse_if_disabled

    paths = locate_project()
    refuse_if_disabled(paths.root, "nothing was mined")
    report = run_miner(paths.root, since_ns, tenant)
    if json_out:
        print_json(report)
        return
    stored = report["stored"]
    _print(report["findings"], f"{len(report['findings'])} findings ({stored['new']} new, "
                               f"{stored['updated']} seen before)")


@app.command("list")
@reports_errors
def list_findings(
    kind: Annotated[str | None, typer.Option(help=f"Only findings of this kind: {', '.join(KINDS)}.")] = None,
    tenant: TenantOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the stored findings as JSON.")] = False,
) -> None:
    """Show the findings stored by earlier `patterns mine` runs, highest score first."""
    from aigentflow.exceptions import UsageError
    from aigentflow.project.paths import locate_project
    from evolution.patterns.miner import check_tenant
    from evolution.patterns.store import finding_tenants, read_findings

    if kind is not None and kind not in KINDS:
        raise UsageError(f"--kind {kind!r} is not a kind of finding; use one of {', '.join(KINDS)}.")
    root = locate_project().root
    if tenant is not None:
        check_tenant(root, tenant, "nothing was listed", also=finding_tenants(root))
    findings = read_findings(root, kind, tenant)
    if json_out:
        print_json({"findings": findings})
        return
    _print(findings, f"{len(findings)} stored findings")
