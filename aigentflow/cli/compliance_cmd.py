"""`aigentflow compliance`: controls mapped to SOC 2 criteria, evidence, attestations, the audit report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aigentflow.cli.common import print_json, reports_errors

app = typer.Typer(help="Compliance: SOC 2 controls' status, evidence, attestations, the audit report.",
                  no_args_is_help=True)
evidence_app = typer.Typer(help="Evidence collected from the run store (test runs, reviews, approvals, audit).",
                           no_args_is_help=True)
app.add_typer(evidence_app, name="evidence")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _project() -> Any:
    from aigentflow.project.paths import locate_project

    return locate_project()


@app.command("status")
@reports_errors
def status_cmd(as_json: JsonOption = False) -> None:
    """Each control's state (pass, fail, no evidence), its SOC 2 criteria and evidence; the compliance score."""
    from aigentflow.compliance.records import connect
    from aigentflow.compliance.status import TARGET, compute

    paths = _project()
    with connect(paths) as conn:
        status = compute(paths, conn)
    if as_json:
        print_json(status.to_dict())
        return
    for item in status.controls:
        attested = ""
        if item.attestation:
            attested = f" [attested by {item.attestation.attested_by}"
            if item.attestation.expires_at:
                attested += f", {'EXPIRED' if item.attestation_state == 'expired' else 'expires'} " \
                            f"{item.attestation.expires_at}"
            attested += "]"
        typer.echo(f"{item.outcome.state.upper():<12} {item.control.id:<19} {','.join(item.control.criteria):<18} "
                   f"{item.outcome.reason}{attested}")
    score = "n/a" if status.score is None else f"{status.score:.1f}%"
    decided = status.count("pass") + status.count("fail")
    verdict = "met" if status.meets_target else "not met"
    typer.echo(f"\nCompliance score: {score} ({status.count('pass')} pass / {decided} decided; "
               f"target > {TARGET:.0f}%: {verdict}); "
               f"{status.coverage_score:.1f}% of all {len(status.controls)} controls "
               f"({status.count('no evidence')} without evidence)")


@evidence_app.command("collect")
@reports_errors
def evidence_collect(as_json: JsonOption = False) -> None:
    """Collect test runs, reviews, approvals, an audit export, the last deps scan; only what is new."""
    from aigentflow.compliance.evidence import collect
    from aigentflow.compliance.records import connect

    paths = _project()
    with connect(paths) as conn:
        result = collect(paths, conn)
    if as_json:
        print_json(result.to_dict())
        return
    typer.echo(f"{len(result.added)} new evidence items ({result.seen} found, "
               f"{result.seen - len(result.added)} already recorded) in {result.seconds:.2f} s")
    for item in result.added:
        typer.echo(f"  {item.kind:<13} {item.sha256[:12]}  {item.source}")


@evidence_app.command("list")
@reports_errors
def evidence_list(
    kind: Annotated[str | None, typer.Option("--kind", help="Only this kind: test_run, review, approval, "
                                                            "audit_export, deps_scan.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The evidence recorded, oldest first, with the sha256 of each item's exported content."""
    from aigentflow.compliance.evidence import KINDS
    from aigentflow.compliance.records import connect, evidence_items
    from aigentflow.exceptions import UsageError

    if kind is not None and kind not in KINDS:
        raise UsageError(f"unknown evidence kind {kind!r}; use one of {', '.join(KINDS)}")
    paths = _project()
    with connect(paths) as conn:
        items = evidence_items(conn, kind)
    if as_json:
        print_json([item.to_dict() for item in items])
        return
    if not items:
        typer.echo("No evidence recorded (`aigentflow compliance evidence collect`).")
    for item in items:
        typer.echo(f"{item.id:>4} {item.kind:<13} {item.sha256}  {item.collected_at}  {item.source}: {item.summary}")


@app.command("attest")
@reports_errors
def attest_cmd(
    control: Annotated[str, typer.Argument(help="The control's id (see `aigentflow compliance status`).")],
    by: Annotated[str | None, typer.Option("--by", help="Who attests (a name).")] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="Until when it holds: YYYY-MM-DD.")] = None,
    note: Annotated[str, typer.Option("--note", help="What was checked.")] = "",
    as_json: JsonOption = False,
) -> None:
    """Record that a person attests CONTROL (until --expires); the latest attestation shows in status."""
    from aigentflow.compliance.controls import find_control
    from aigentflow.compliance.records import attest, connect, parse_date
    from aigentflow.exceptions import UsageError

    found = find_control(control)
    if not by or not by.strip():
        raise UsageError("say who attests: --by NAME")
    until = parse_date(expires) if expires is not None else None
    paths = _project()
    with connect(paths) as conn:
        record = attest(conn, found.id, by, until, note)
    if as_json:
        print_json(record.to_dict())
        return
    typer.echo(f"Attestation #{record.id}: {found.id} attested by {record.attested_by}"
               f"{f' until {until}' if until else ''}{' (already expired)' if record.expired() else ''}")


@app.command("attestations")
@reports_errors
def attestations_cmd(as_json: JsonOption = False) -> None:
    """Every attestation: who attested what, when, and until when."""
    from aigentflow.compliance.records import attestations, connect

    paths = _project()
    with connect(paths) as conn:
        records = attestations(conn)
    if as_json:
        print_json([record.to_dict() for record in records])
        return
    if not records:
        typer.echo("No attestation recorded (`aigentflow compliance attest CONTROL --by NAME`).")
    for r in records:
        expiry = "never expires" if not r.expires_at else f"{'EXPIRED' if r.expired() else 'expires'} {r.expires_at}"
        typer.echo(f"#{r.id} {r.control:<19} {r.attested_by} at {r.attested_at}, {expiry}"
                   f"{f': {r.note}' if r.note else ''}")


@app.command("report")
@reports_errors
def report_cmd(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The HTML file to write.")] = None,
) -> None:
    """Write the audit report (controls, states, evidence with hashes, attestations, score) as HTML."""
    from aigentflow.compliance.records import connect
    from aigentflow.compliance.report import default_output, render
    from aigentflow.compliance.status import compute
    from aigentflow.exceptions import UsageError

    if output is not None and output.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"{output}: the report is HTML; name the file *.html")
    paths = _project()
    with connect(paths) as conn:
        status = compute(paths, conn)
        html = render(paths, conn, status)
    target = output or default_output(paths, status.at)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")
    score = "n/a" if status.score is None else f"{status.score:.1f}%"
    typer.echo(f"Report: {target} (score {score}, {len(status.controls)} controls)")
