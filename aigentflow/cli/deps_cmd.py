"""``aigentflow deps``: dependency scanning (OSV), license compliance and a CycloneDX SBOM.

Offline by default, against the shipped test snapshot or ``--db``; ``--online`` asks api.osv.dev.
Never imports Ray or litellm.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from aigentflow.cli.common import print_json, reports_errors

app = typer.Typer(help="Dependency security: vulnerability scan (OSV), licenses, SBOM (CycloneDX).",
                  no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
FAIL_ON = ("any", "low", "medium", "high", "critical", "never")


def _project_root(path: Path | None) -> Path:
    from aigentflow.exceptions import UsageError
    from aigentflow.project.paths import find_git_root

    start = (path or Path.cwd()).resolve()
    if not start.is_dir():
        raise UsageError(f"{start} is not a directory.")
    return find_git_root(start) or start


def _remember(root: Path, result: dict[str, object]) -> None:
    """Keep a project's last scan where `aigentflow compliance` reads it (only in an initialised project)."""
    from aigentflow.compliance.checks import DEPS_SCAN_FILE
    from aigentflow.project.paths import ProjectPaths
    from aigentflow.store.rows import now_iso

    paths = ProjectPaths(root)
    if paths.initialized:
        target = paths.state_dir / DEPS_SCAN_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({**result, "scanned_at": now_iso()}, indent=2, default=str), encoding="utf-8")


@app.command("scan")
@reports_errors
def scan(
    project: Annotated[bool, typer.Option("--project", help="The project's pinned dependencies (default).")] = False,
    self_: Annotated[bool, typer.Option("--self", help="Scan aigentflow's own installed dependency tree.")] = False,
    all_installed: Annotated[bool, typer.Option(help="With --self: every installed distribution.")] = False,
    path: Annotated[Path | None, typer.Option(help="The project (default: the git work tree here).")] = None,
    db: Annotated[Path | None, typer.Option(help="A directory of OSV records (default: the test snapshot).")] = None,
    online: Annotated[bool, typer.Option("--online", help="Ask api.osv.dev instead of a local database.")] = False,
    fail_on: Annotated[str, typer.Option(help=f"Exit 1 on a finding this severe: {', '.join(FAIL_ON)}.")] = "any",
    as_json: JsonOption = False,
) -> None:
    """Match dependencies against OSV advisories: each finding's id, package, installed and fixed version,
    severity; exits 1 when one is at least --fail-on."""
    from aigentflow.enterprise.vendors import scan as scans
    from aigentflow.enterprise.vendors.osv import at_least
    from aigentflow.exceptions import UsageError

    if fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on {fail_on!r}: use one of {', '.join(FAIL_ON)}.")
    if project and self_:
        raise UsageError("--project and --self scan different things: give one.")
    if online and db is not None:
        raise UsageError("--online and --db are two databases: give one.")
    if self_:
        result = scans.scan_self(db=db, online=online, all_installed=all_installed)
    else:
        root = _project_root(path)
        result = scans.scan_project(root, db=db, online=online)
        _remember(root, result.to_dict())
    failing = [f for f in result.findings if fail_on != "never" and (fail_on == "any" or at_least(f.severity, fail_on))]
    if as_json:
        print_json({**result.to_dict(), "fail_on": fail_on, "failing": len(failing)})
    else:
        typer.echo(f"scanned {len(result.packages)} packages of {result.target} against {result.database}")
        for f in result.findings:
            typer.echo(f"{f.severity.upper():<9} {f.id:<18} {f.package} {f.installed} -> "
                       f"{f.fixed or 'no fix'}  {f.summary[:70]}  ({f.source})")
        if result.unpinned:
            typer.echo(f"not scanned, no exact version: {', '.join(r for r, _ in result.unpinned)}")
        typer.echo(f"{len(result.findings)} finding(s), {len(failing)} at or above --fail-on {fail_on}")
    if failing:
        raise typer.Exit(1)


def _denied_by_config() -> list[str]:
    from aigentflow.config.loader import load_config
    from aigentflow.project.paths import find_git_root

    return list(load_config(find_git_root(Path.cwd())).settings.compliance.denied_licenses)


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@app.command("licenses")
@reports_errors
def licenses(
    allow: Annotated[list[str], typer.Option(help="Allowed SPDX ids (repeat or comma-separate); others fail.")] = [],  # noqa: B006
    deny: Annotated[list[str], typer.Option(help="Denied SPDX ids (default: compliance.denied_licenses).")] = [],  # noqa: B006
    fail_unknown: Annotated[bool, typer.Option(help="A license that cannot be told fails too.")] = False,
    show_all: Annotated[bool, typer.Option("--all", help="List every distribution, not only the problems.")] = False,
    as_json: JsonOption = False,
) -> None:
    """The license of every installed distribution (SPDX ids from its metadata), checked against a policy;
    exits 1 on a violation."""
    from aigentflow.enterprise.vendors.licenses import Policy
    from aigentflow.enterprise.vendors.scan import license_report

    policy = Policy(deny=_split(deny) or _denied_by_config(), allow=_split(allow), fail_unknown=fail_unknown)
    report = license_report(policy)
    if as_json:
        print_json(report)
    else:
        from collections import Counter

        rows = report["distributions"]
        counts = Counter(r["license"] for r in rows)
        typer.echo(f"{len(rows)} distributions: " + ", ".join(f"{name} {n}" for name, n in counts.most_common()))
        shown = rows if show_all else [r for r in rows if not r["allowed"] or r["unknown"]]
        for row in shown:
            verdict = "ok" if row["allowed"] else "DENIED"
            typer.echo(f"{verdict:<7} {row['name']} {row['version']}: {row['license']} (from {row['source']})")
        allowed = f"; allow {', '.join(policy.allow)}" if policy.allow else ""
        typer.echo(f"{len(report['violations'])} violation(s), {len(report['unknown'])} unknown; "
                   f"deny {', '.join(policy.deny) or '-'}{allowed}")
    if report["violations"]:
        raise typer.Exit(1)


@app.command("sbom")
@reports_errors
def sbom(
    output: Annotated[Path | None, typer.Option(help="Write the SBOM here (default: standard output).")] = None,
) -> None:
    """A CycloneDX 1.5 JSON SBOM of every installed distribution: purls, licenses, dependency graph."""
    import json

    from aigentflow import __version__
    from aigentflow.enterprise.vendors.inventory import environment
    from aigentflow.enterprise.vendors.sbom import build_sbom

    bom = build_sbom(environment(), tool_version=__version__)
    text = json.dumps(bom, indent=2) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {len(bom['components']) + 1} components to {output}", err=True)
