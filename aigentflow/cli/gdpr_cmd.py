"""`aigentflow gdpr`: data subject requests (export, erase), consent, retention, the Article 30 record."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aigentflow.cli.common import print_json, reports_errors

app = typer.Typer(help="GDPR operations: export or erase a data subject's records, consent, retention, Article 30.",
                  no_args_is_help=True)

AliasOption = Annotated[list[str] | None, typer.Option(
    "--alias", help="Another identifier of the same person (a name, a user id); repeatable.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _project() -> Any:
    from aigentflow.project.paths import locate_project

    return locate_project()


def _subject(paths: Any, identifier: str, aliases: list[str] | None) -> Any:
    from aigentflow.gdpr.subject import Subject, project_key

    return Subject.of(identifier, aliases or [], project_key(paths.state_dir))


def _settings(paths: Any) -> Any:
    from aigentflow.config.loader import load_config

    return load_config(paths.root).settings


GIT_NOTE = ("git: only aigentflow's own run branches (aigentflow/*) are rewritten; the user's branches and tags "
            "are never rewritten")


@app.command("export")
@reports_errors
def export_cmd(
    subject: Annotated[str, typer.Argument(help="The data subject: an e-mail address, a name or a user id.")],
    alias: AliasOption = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The zip archive to write.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Gather every record naming SUBJECT (run store, traces, audit, outputs, findings, worktrees, git) into a zip."""
    from aigentflow.gdpr.export import export

    paths = _project()
    result = export(paths, _subject(paths, subject, alias), output, _settings(paths).run.tenant)
    if as_json:
        print_json(result.to_dict())
        return
    typer.echo(f"DSAR {result.request.id}: {len(result.findings.hits)} records naming the subject "
               f"(subject hash {result.request.subject_hash[:8]}), in {result.seconds:.2f} s")
    for location, count in result.findings.counts().items():
        if count:
            typer.echo(f"  {location}: {count}")
    if result.findings.user_history:
        typer.echo(f"  user git history: {len(result.findings.user_history)} objects (reported only; {GIT_NOTE})")
    typer.echo(f"Archive: {result.archive}")


@app.command("erase")
@reports_errors
def erase_cmd(
    subject: Annotated[str, typer.Argument(help="The data subject: an e-mail address, a name or a user id.")],
    alias: AliasOption = None,
    pseudonymise: Annotated[bool, typer.Option(
        "--pseudonymise", help="Replace with a stable keyed pseudonym instead of [erased:<hash>].")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Erase (or pseudonymise) SUBJECT everywhere export finds it; rerun after a crash to finish."""
    from aigentflow.gdpr.erase import erase

    paths = _project()
    who = _subject(paths, subject, alias)
    if not yes and not typer.confirm(f"Rewrite every record naming this subject in {paths.root}? ({GIT_NOTE})"):
        raise typer.Exit(1)
    result = erase(paths, who, pseudonymise=pseudonymise, tenant_id=_settings(paths).run.tenant)
    if as_json:
        print_json(result.to_dict())
    else:
        verb = "pseudonymised" if result.mode == "pseudonymise" else "erased"
        state = "done" if not result.remaining else "NOT done"
        typer.echo(f"DSAR {result.request.id} {state}: {sum(result.counts.values())} records {verb} in "
                   f"{result.units} places{' (continued an interrupted erase)' if result.resumed else ''}, "
                   f"in {result.seconds:.2f} s")
        for location, count in result.counts.items():
            if count:
                typer.echo(f"  {location}: {count}")
        typer.echo(GIT_NOTE + ".")
        if result.user_history:
            typer.echo(f"Left in the user's own git history: {result.user_history} objects; rewrite them yourself "
                       "(git filter-repo) if they must go.")
    if result.remaining:
        typer.echo(f"error: still naming the subject after erasing: {', '.join(result.remaining)}; rerun the erase.",
                   err=True)
        raise typer.Exit(1)


@app.command("requests")
@reports_errors
def requests_cmd(as_json: JsonOption = False) -> None:
    """List data subject requests with their completion time against the 30-day target."""
    from aigentflow.gdpr.requests import TARGET_DAYS, list_requests

    records = list_requests(_project().database)
    if as_json:
        print_json([r.to_dict() for r in records])
        return
    for r in records:
        took = f"{r.duration_s:.2f} s" if r.duration_s is not None else "-"
        verdict = {True: f"within {TARGET_DAYS} days", False: f"OVER {TARGET_DAYS} days", None: "open"}[r.within_target]
        typer.echo(f"{r.id}  {r.kind:<6}  {r.status:<11}  subject {r.subject_hash[:8]}  {r.requested_at}  {took}  "
                   f"{verdict}")


consent_app = typer.Typer(help="Consent records: give, withdraw, list (per subject and purpose).", no_args_is_help=True)
app.add_typer(consent_app, name="consent")
PurposeOption = Annotated[str, typer.Option("--purpose", "-p", help="The purpose, e.g. processing.")]


def _consent(subject: str, purpose: str, given: bool, as_json: bool) -> None:
    from aigentflow.gdpr.consent import record

    paths = _project()
    state = record(paths.database, paths.state_dir, subject, purpose, given, _settings(paths).run.tenant)
    if as_json:
        print_json(vars(state))
    else:
        typer.echo(f"consent {'given' if given else 'withdrawn'}: subject {state.subject_hash[:8]}, purpose "
                   f"{purpose}, at {state.at}")


@consent_app.command("give")
@reports_errors
def consent_give(subject: Annotated[str, typer.Argument()], purpose: PurposeOption = "processing",
                 as_json: JsonOption = False) -> None:
    """Record that SUBJECT consents to PURPOSE."""
    _consent(subject, purpose, True, as_json)


@consent_app.command("withdraw")
@reports_errors
def consent_withdraw(subject: Annotated[str, typer.Argument()], purpose: PurposeOption = "processing",
                     as_json: JsonOption = False) -> None:
    """Record that SUBJECT withdraws consent to PURPOSE."""
    _consent(subject, purpose, False, as_json)


@consent_app.command("list")
@reports_errors
def consent_list(subject: Annotated[str | None, typer.Argument(help="Only this subject.")] = None,
                 purpose: Annotated[str | None, typer.Option("--purpose", "-p")] = None,
                 as_json: JsonOption = False) -> None:
    """The latest consent of each subject (by hash) and purpose."""
    from aigentflow.gdpr.consent import states
    from aigentflow.gdpr.subject import keyed_hash, project_key

    paths = _project()
    wanted = {keyed_hash(project_key(paths.state_dir), subject)} if subject else None
    found = [s for s in states(paths.database, wanted) if purpose is None or s.purpose == purpose]
    if as_json:
        print_json([vars(s) for s in found])
        return
    for s in found:
        typer.echo(f"{s.subject_hash[:8]}  {s.purpose}  {'given' if s.given else 'withdrawn'}  {s.at}")


@app.command("retention")
@reports_errors
def retention_cmd(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would go; remove nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove traces, run outputs and finished runs' worktrees older than the gdpr.retention_* policy."""
    from aigentflow.gdpr.retention import apply_retention

    paths = _project()
    report = apply_retention(paths, _settings(paths).gdpr, dry_run=dry_run)
    if as_json:
        print_json(report.to_dict())
        return
    verb = "would remove" if dry_run else "removed"
    typer.echo(f"policy: {report.policy} (0 days: kept forever)")
    for kind, items in report.removed.items():
        typer.echo(f"{verb} {len(items)} {kind}" + "".join(f"\n  {item}" for item in items))
    if report.spans_removed:
        typer.echo(f"{verb} {report.spans_removed} compacted spans")


@app.command("article30")
@reports_errors
def article30_cmd(output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the Markdown here instead of printing it.")] = None) -> None:
    """The record of processing activities (GDPR Article 30) from the configuration, as Markdown."""
    from aigentflow.gdpr.article30 import article30

    paths = _project()
    text = article30(_settings(paths), paths.database)
    if output:
        output.write_text(text)
        typer.echo(f"Wrote {output}")
    else:
        typer.echo(text, nl=False)
