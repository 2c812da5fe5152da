"""``aigentflow evolve generate|list|show|approve|reject``: thin wiring around ``generate`` and ``candidates``.

Registered through the ``aigentflow.commands`` entry point. Only ``generate`` imports DSPy (and litellm);
``list``, ``show``, ``approve`` and ``reject`` import neither, nor Ray."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from aigentflow.cli.common import print_json, reports_errors

app = typer.Typer(
    help="Generate new versions of agent roles from mined findings (DSPy), validate them against the "
         "constitution, and approve or reject them.",
    no_args_is_help=True, rich_markup_mode=None, add_completion=False,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@app.command()
@reports_errors
def generate(
    role: Annotated[str | None, typer.Option(help="The role to improve (its top finding, if any, is used).")] = None,
    pattern: Annotated[str | None, typer.Option(help="The finding to fix, by id (`aigentflow patterns list --json`).")]
    = None,
    tenant: Annotated[str | None, typer.Option(
        help="Generate from this tenant's findings and runs only (default: the finding's tenant).")] = None,
    optimizer: Annotated[str, typer.Option(help="The DSPy optimizer: bootstrap (BootstrapFewShot), mipro "
                                                 "(MIPROv2) or gepa (GEPA).")] = "bootstrap",
    model: Annotated[str | None, typer.Option(help="The model (litellm name; replay/evolve-demo offline); default: "
                                                   "the project's model.name.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Generate a candidate version of a role, validated and awaiting approval."""
    from aigentflow.exceptions import UsageError
    from aigentflow.project.paths import locate_project
    from evolution.generate.generate import generate as run

    if (role is None) == (pattern is None) and pattern is None:
        raise UsageError("give --role ROLE or --pattern ID (a finding from `aigentflow patterns list`).")
    evidence = run(locate_project(), role=role, pattern=pattern, optimizer=optimizer, model=model, tenant=tenant)
    if json_out:
        print_json({k: evidence.get(k) for k in ("id", "tenant_id", "status", "chosen", "candidates", "validation",
                                                 "model_calls", "role_model_calls", "sandbox_runs", "seconds",
                                                 "finding", "optimizer", "model", "programs", "critique", "tests")})
        return
    chosen = evidence["chosen"]
    typer.echo(f"{evidence['id']}: {evidence['status']} (`aigentflow evolve show {evidence['id']}`, then "
               f"`aigentflow evolve approve {evidence['id']}` or `reject`)")
    typer.echo(f"  tenant: {evidence['tenant_id']}; finding: {evidence['finding']['title']}")
    typer.echo(f"  chosen: {chosen['source']}, score {chosen['score']:.2f} of {len(evidence['candidates'])} "
               f"candidates; {chosen['summary']}")
    typer.echo(f"  critique: complies; regression tests: {evidence['tests']['why']}")
    typer.echo(f"  {evidence['model_calls']} model calls ({evidence['role_model_calls']} of the role), "
               f"{evidence['sandbox_runs']} sandbox test runs, {evidence['seconds']:.1f} s ({evidence['optimizer']}, "
               f"{evidence['model']})")


@app.command("list")
@reports_errors
def list_candidates(json_out: JsonOption = False) -> None:
    """The generated versions, their tenant, approval and score."""
    from aigentflow.cli.plain import echo, table
    from aigentflow.project.paths import locate_project
    from evolution.generate.candidates import list_candidates as found

    rows = found(locate_project())
    if json_out:
        print_json({"candidates": rows})
        return
    if not rows:
        echo("no generated versions (`aigentflow evolve generate --role ROLE`)")
        return
    echo(table(("id", "tenant", "approval", "score", "finding", "summary"),
               [(r["id"], r["tenant_id"], str(r["approval"]), "" if r["score"] is None else f"{r['score']:.2f}",
                 r["finding"] or "", r["summary"]) for r in rows], title=f"{len(rows)} generated versions",
               flexible=(5,)))


@app.command()
@reports_errors
def show(candidate: Annotated[str, typer.Argument(help="role@version")], json_out: JsonOption = False) -> None:
    """A candidate: its spec, instructions, validation and the optimizer's evidence."""
    import json

    from aigentflow.project.paths import locate_project
    from evolution.generate import candidates

    paths = locate_project()
    spec_path = candidates.spec_file(paths, candidate)
    spec = json.loads(spec_path.read_text())
    evidence_file = candidates.evidence_path(paths, candidate)
    evidence = json.loads(evidence_file.read_text()) if evidence_file.is_file() else {}
    layer = spec_path.with_suffix(".md")
    instructions = layer.read_text() if layer.is_file() else ""
    if json_out:
        print_json({"spec": spec, "instructions": instructions, "evidence": evidence})
        return
    typer.echo(f"{candidate} ({spec.get('approval')}), generated from {evidence.get('incumbent', '?')} for tenant "
               f"{candidates.tenant_of(spec, evidence)}")
    typer.echo(f"spec: {spec_path}\n{json.dumps(spec, indent=2)}")
    typer.echo(f"validation: {'passed' if evidence.get('validation', {}).get('passed') else 'see evidence'}")
    if critique := evidence.get("critique"):
        typer.echo(f"critique ({'complies' if critique.get('complies') else 'does not comply'}): "
                   f"{critique.get('reasoning', '')}")
    if tests := evidence.get("tests"):
        typer.echo(f"regression tests: {'passed' if tests.get('passed') else 'FAILED'}: {tests.get('why', '')}")
        for row in tests.get("cases", []):
            said = {True: "pass", False: "fail"}
            typer.echo(f"  {row['id']} (from the {row['from']}): incumbent {said[bool(row['incumbent']['passed'])]}, "
                       f"candidate {said[bool(row['candidate']['passed'])]}")
    typer.echo(f"optimizer: {evidence.get('optimizer', '?')}, {evidence.get('model_calls', '?')} model calls, "
               f"{evidence.get('seconds', '?')} s; programs tried:")
    for program in evidence.get("programs", []):
        score = "  -  " if program.get("score") is None else f"{program['score']:.2f}"
        typer.echo(f"   {score}  {program.get('source', '')} ({program.get('demos', 0)} demos)")
    typer.echo("proposals:")
    for c in evidence.get("candidates", []):
        mark = "*" if c.get("source") == evidence.get("chosen", {}).get("source") else " "
        typer.echo(f" {mark} {c.get('score', 0):.2f}  {c.get('source', '')[:100]}")
    typer.echo(f"instructions ({layer}):\n{instructions}")
    typer.echo(f"evidence: {evidence_file}")


def _decide(candidate: str, decision: str, note: str) -> dict[str, Any]:
    from aigentflow.exceptions import UsageError
    from aigentflow.project.paths import locate_project
    from evolution.generate import candidates
    from evolution.generate.generate import audit, revalidate

    paths = locate_project()
    candidates.spec_file(paths, candidate)
    if decision == "approved":
        problems = revalidate(paths, candidate)
        if problems:
            listed = "\n  ".join(problems)
            raise UsageError(f"{candidate} cannot be approved; it is not valid any more:\n  {listed}\n"
                             "Nothing was changed; reject it or generate another.")
    spec = candidates.set_approval(paths, candidate, decision, note)
    evidence = candidates.read_json(candidates.evidence_path(paths, candidate)) or {}
    audit(paths, f"evolve.{decision}", {"id": candidate, "note": note}, candidates.tenant_of(spec, evidence))
    return spec


@app.command()
@reports_errors
def approve(candidate: Annotated[str, typer.Argument(help="role@version")],
            note: Annotated[str, typer.Option(help="Why, for the audit log.")] = "") -> None:
    """Approve a candidate (checked again first): runs may then pick it with agents.<role>.version."""
    _decide(candidate, "approved", note)
    role, version = candidate.split("@", 1)
    typer.echo(f"{candidate} approved. Use it: `aigentflow config set agents.{role}.version {version}`")


@app.command()
@reports_errors
def reject(candidate: Annotated[str, typer.Argument(help="role@version")],
           note: Annotated[str, typer.Option(help="Why, for the audit log.")] = "") -> None:
    """Reject a candidate: it never runs, and no longer counts against evolution.maxGeneratedAgents."""
    _decide(candidate, "rejected", note)
    typer.echo(f"{candidate} rejected.")
