"""`aigentflow incidents`: detect incidents, list/show/ack/resolve them, silence a rule, read and run runbooks.

Thin: each command builds its inputs and calls ``aigentflow.incidents``. None imports Ray or litellm."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from aigentflow.cli.common import print_json, reports_errors

app = typer.Typer(help="Incident response: detection, severities, runbooks, alert routing.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]
IncidentId = Annotated[str, typer.Argument(help="The incident: INC-7 or 7.")]


def _paths() -> Any:
    from aigentflow.project.paths import locate_project

    return locate_project()


def _store() -> Any:
    from aigentflow.incidents.store import IncidentStore

    return IncidentStore(_paths().database)


def _who(by: str | None) -> str:
    from aigentflow.flags.load import current_user

    return by or current_user()


def _audit(event: str, data: dict[str, Any]) -> None:
    from aigentflow.store.sqlite import SQLiteRunStore

    with SQLiteRunStore(_paths().database) as store:
        store.append_audit(event, None, data)


@app.command()
@reports_errors
def detect(
    no_alert: Annotated[bool, typer.Option("--no-alert", help="Record incidents; send no alert.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="Print nothing (the run-end detection).")] = False,
    json_out: Json = False,
) -> None:
    """Run every detection rule; open or re-detect incidents (idempotent), then route alerts."""
    from aigentflow.incidents.detect import detect as run_detection

    report = run_detection(_paths().root, alert=not no_alert)
    if quiet:
        return
    if json_out:
        print_json(report)
        return
    typer.echo(f"{len(report['rules'])} rules, {report['findings']} findings in {report['seconds']:.2f} s: "
               f"{len(report['opened'])} opened, {len(report['redetected'])} re-detected, "
               f"{len(report['escalated'])} escalated")
    for what in ("opened", "escalated", "redetected"):
        if report[what]:
            typer.echo(f"  {what}: {', '.join(report[what])}")
    for delivery in report["deliveries"]:
        typer.echo(f"  alert INC-{delivery['incident']} -> {delivery['route']}: {delivery['result']} "
                   f"({delivery['attempts']} attempt(s)) {delivery['detail']}")
    for problem in report["errors"]:
        typer.echo(f"  rule failed: {problem}", err=True)


@app.command("list")
@reports_errors
def list_incidents(
    status: Annotated[str | None, typer.Option(help="open, acknowledged or resolved.")] = None,
    severity: Annotated[str | None, typer.Option(help="SEV1, SEV2, SEV3 or SEV4.")] = None,
    rule: Annotated[str | None, typer.Option(help="Only this rule's incidents.")] = None,
    json_out: Json = False,
) -> None:
    """The incidents, newest first."""
    from aigentflow.cli.plain import table
    from aigentflow.exceptions import UsageError
    from aigentflow.incidents.records import SEVERITIES, STATUSES

    if status and status not in STATUSES:
        raise UsageError(f"--status {status!r}: choose one of {', '.join(STATUSES)}")
    if severity and severity.upper() not in SEVERITIES:
        raise UsageError(f"--severity {severity!r}: choose one of {', '.join(SEVERITIES)}")
    with _store() as store:
        found = store.list(status=status, severity=severity.upper() if severity else None, rule=rule)
    if json_out:
        print_json([i.to_dict() for i in found])
        return
    if not found:
        typer.echo("no incidents")
        return
    typer.echo(table(["ID", "SEV", "STATUS", "RULE", "COUNT", "LAST SEEN", "TITLE"],
                     [[f"INC-{i.id}", i.severity, i.status, i.rule, str(i.count), i.last_seen[:19], i.title]
                      for i in found], flexible=[6]))


@app.command()
@reports_errors
def show(incident: IncidentId, json_out: Json = False) -> None:
    """One incident with its timeline."""
    with _store() as store:
        found = store.get(incident)
        timeline = store.timeline(found.id)
    if json_out:
        print_json({**found.to_dict(), "timeline": [e.to_dict() for e in timeline]})
        return
    typer.echo(f"INC-{found.id}  {found.severity}  {found.status}  {found.rule}  tenant {found.tenant_id}")
    typer.echo(f"  {found.title}")
    typer.echo(f"  seen {found.count} time(s): first {found.first_seen}, last {found.last_seen}"
               + (f"; acknowledged by {found.acked_by}" if found.acked_by else ""))
    for name, value in sorted(found.facts.items()):
        typer.echo(f"  {name}: {value}")
    typer.echo(f"  runbook: aigentflow incidents runbook INC-{found.id}")
    typer.echo("timeline:")
    for event in timeline:
        extra = " ".join(x for x in (event.route and f"[{event.route}]", event.actor and f"by {event.actor}") if x)
        typer.echo(f"  {event.at[:23]}  {event.kind:<13} {extra + ' ' if extra else ''}{event.detail}")


@app.command()
@reports_errors
def ack(incident: IncidentId, by: Annotated[str | None, typer.Option(
        "--by", help="Who (default: AIGENTFLOW_USER or your login).")] = None, json_out: Json = False) -> None:
    """Acknowledge an incident: someone is on it (no more alerts for it)."""
    who = _who(by)
    with _store() as store:
        found = store.acknowledge(incident, who)
    _audit("incident.acknowledged", {"incident": found.id, "by": who, "rule": found.rule})
    if json_out:
        print_json(found.to_dict())
    else:
        typer.echo(f"INC-{found.id} acknowledged by {who}")


@app.command()
@reports_errors
def resolve(incident: IncidentId, note: Annotated[str, typer.Option(help="What was done.")] = "",
            by: Annotated[str | None, typer.Option(
                "--by", help="Who (default: AIGENTFLOW_USER or your login).")] = None,
            json_out: Json = False) -> None:
    """Resolve an incident (with a note on the timeline). New evidence opens a new incident."""
    who = _who(by)
    with _store() as store:
        found = store.resolve(incident, who, note)
    _audit("incident.resolved", {"incident": found.id, "by": who, "rule": found.rule})
    if json_out:
        print_json(found.to_dict())
    else:
        typer.echo(f"INC-{found.id} resolved by {who}")


@app.command()
@reports_errors
def silence(
    rule: Annotated[str, typer.Option("--rule", help="The rule id to silence ('*': every rule).")],
    duration: Annotated[str, typer.Option("--for", help="How long: 30m, 2h, 1d.")],
    reason: Annotated[str, typer.Option(help="Why, on the record.")] = "",
    by: Annotated[str | None, typer.Option("--by", help="Who (default: AIGENTFLOW_USER or your login).")] = None,
    json_out: Json = False,
) -> None:
    """Send no alert for a rule's incidents for a while (they are still detected and recorded)."""
    from datetime import UTC, datetime, timedelta

    from aigentflow.exceptions import UsageError
    from aigentflow.incidents.rules import load_rules, parse_duration

    seconds = parse_duration(duration, "--for")
    if seconds <= 0:
        raise UsageError("--for must be longer than 0")
    known = {r.id for r in load_rules(_paths().state_dir)}
    if rule != "*" and rule not in known:
        raise UsageError(f"no rule {rule!r}; the rules are {', '.join(sorted(known))} (`aigentflow incidents rules`)")
    until = (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat(timespec="milliseconds")
    who = _who(by)
    with _store() as store:
        number = store.silence(rule, until, who, reason)
    _audit("incident.silenced", {"rule": rule, "until": until, "by": who})
    if json_out:
        print_json({"silence": number, "rule": rule, "until": until, "by": who})
    else:
        typer.echo(f"{rule} silenced until {until}")


@app.command()
@reports_errors
def rules(json_out: Json = False) -> None:
    """The detection rules (built-in and .aigentflow/incidents/rules.toml) and the severity criteria."""
    from dataclasses import asdict

    from aigentflow.incidents.records import SEVERITY_CRITERIA
    from aigentflow.incidents.rules import load_rules

    found = load_rules(_paths().state_dir)
    if json_out:
        print_json({"rules": [asdict(r) for r in found], "severities": SEVERITY_CRITERIA})
        return
    for level, text in SEVERITY_CRITERIA.items():
        typer.echo(f"{level}: {text}")
    for r in found:
        extra = "".join(f"; {k} at {v:g}" for k, v in r.escalate.items())
        facets = "".join(f"; {k}: {v}" for k, v in r.facets.items())
        typer.echo(f"\n{r.id} ({r.kind}, {r.severity}{extra}{facets})\n  {r.description}")


@app.command()
@reports_errors
def runbook(
    target: Annotated[str, typer.Argument(help="An incident (INC-7) or a runbook id (crash-loop).")],
    run_step: Annotated[int | None, typer.Option("--run-step", min=1, help="Run this step's commands.")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Run without asking.")] = False,
    json_out: Json = False,
) -> None:
    """Show the runbook of an incident's rule (or a runbook by id); --run-step N runs an executable step."""
    import subprocess
    import sys

    from aigentflow.exceptions import UsageError
    from aigentflow.incidents import runbooks

    paths = _paths()
    incident = None
    if target.upper().startswith("INC-") or target.isdigit():
        with _store() as store:
            incident = store.get(target)
        book = runbooks.for_rule(paths.state_dir, incident.rule)
        if book is None:
            raise UsageError(f"no runbook serves rule {incident.rule}; write one in .aigentflow/runbooks/")
    else:
        book = runbooks.by_id(paths.state_dir, target)
        if book is None:
            ids = sorted({b.id for b in runbooks.runbooks(paths.state_dir)})
            raise UsageError(f"no runbook {target!r}; there are {', '.join(ids)}")
    values = {"incident": f"INC-{incident.id}" if incident else "", "rule": incident.rule if incident else "",
              "tenant": incident.tenant_id if incident else ""}
    if run_step is None:
        if json_out:
            print_json({"id": book.id, "title": book.title, "rules": list(book.rules), "path": str(book.path),
                        "steps": [{"number": s.number, "text": s.text, "executable": s.executable,
                                   "commands": [runbooks.filled(c, values) for c in s.commands]}
                                  for s in book.steps]})
            return
        typer.echo(f"{book.title}  ({book.path})")
        for s in book.steps:
            typer.echo(f"\n{s.number}. {'[executable] ' if s.executable else ''}{s.text}")
        return
    if run_step > len(book.steps):
        raise UsageError(f"{book.id} has {len(book.steps)} steps; there is no step {run_step}")
    step = book.steps[run_step - 1]
    if not step.executable:
        first = step.text.splitlines()[0] if step.text else ""
        raise UsageError(f"step {run_step} of {book.id} is done by a person, not a command: {first}")
    commands = [runbooks.filled(c, values) for c in step.commands]
    if not yes:
        shown = "; ".join("aigentflow " + " ".join(c) for c in commands)
        if not sys.stdin.isatty():
            raise UsageError(f"step {run_step} runs `{shown}`: pass --yes to run it without a terminal")
        typer.confirm(f"run `{shown}`?", abort=True)
    results = []
    for command in commands:
        done = subprocess.run([sys.executable, "-m", "aigentflow", *command], cwd=paths.root, capture_output=True,
                              text=True, timeout=600, check=False)
        results.append({"command": command, "exit_code": done.returncode, "stdout": done.stdout,
                        "stderr": done.stderr})
        if incident is not None:
            with _store() as store:
                store.note(incident.id, "runbook-step", f"{book.id} step {run_step}: `aigentflow {' '.join(command)}` "
                           f"exited {done.returncode}", actor=_who(None), result=str(done.returncode))
        if done.returncode != 0:
            break
    if json_out:
        print_json({"runbook": book.id, "step": run_step, "results": results})
    else:
        for result in results:
            typer.echo(f"$ aigentflow {' '.join(result['command'])}  (exit {result['exit_code']})")
            typer.echo(result["stdout"].rstrip())
            if result["stderr"].strip():
                typer.echo(result["stderr"].rstrip(), err=True)
    if results and results[-1]["exit_code"] != 0:
        raise typer.Exit(1)
