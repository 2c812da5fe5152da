"""``aigentflow tournament run|leaderboard|promote|tasks``: thin wiring around ``runner``, ``store`` and
``promotion``. Registered through the ``aigentflow.commands`` entry point."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from aigentflow.cli.common import print_json, reports_errors

app = typer.Typer(
    help="Rate versions of a role against each other on benchmark tasks (TrueSkill), and promote the better one.",
    no_args_is_help=True, rich_markup_mode=None, add_completion=False,
)


def _versions(text: str | None) -> list[str] | None:
    return [v.strip() for v in text.split(",") if v.strip()] if text else None


def leaderboard_rows(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [(r["role"], r["version"], f"{r['mu']:.2f}", f"{r['sigma']:.2f}", f"{r['conservative']:.2f}",
             f"{r['ci95'][0]:.1f}..{r['ci95'][1]:.1f}", str(r["matches"]), str(r["wins"]), str(r["losses"]),
             str(r["draws"])) for r in rows]


def _print_leaderboard(rows: list[dict[str, Any]], title: str) -> None:
    from aigentflow.cli.plain import echo, table

    if not rows:
        echo("no rated versions yet (`aigentflow tournament run --role ROLE`)")
        return
    echo(table(("role", "version", "mu", "sigma", "mu-3sigma", "95% interval", "matches", "wins", "losses", "draws"),
               leaderboard_rows(rows), title=title))


@contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """File descriptor 1 points at stderr meanwhile (prints of Python and of native code alike)."""
    import os
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _live(root: Any) -> bool:
    """Live bars: stdout is a terminal and the project's platform.genUIOutput flag is on."""
    from aigentflow.genui.render import use_rich

    if not use_rich():
        return False
    from aigentflow.config.loader import load_config

    return use_rich(load_config(root).flags)


@app.command()
@reports_errors
def run(
    role: Annotated[str, typer.Option(help="The role whose versions play (e.g. backend_developer).")],
    versions: Annotated[str | None, typer.Option(help="Versions to play, comma-separated; default: all.")] = None,
    matches: Annotated[int | None, typer.Option(help="How many matches; default: every pair on every task.")] = None,
    tasks: Annotated[str | None, typer.Option(help="Only these benchmark tasks, comma-separated.")] = None,
    model: Annotated[str, typer.Option(help="The model the versions call.")] = "replay/tournament",
    address: Annotated[str | None, typer.Option(help="A Ray cluster to fan the matches out on.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Play matches between versions of ROLE on its benchmark tasks, as Ray tasks; each result is graded,
    recorded and rated at once (an interrupted tournament is resumed by running the same command)."""
    from aigentflow.cli.plain import echo
    from aigentflow.project.paths import locate_project
    from evolution.rollout.switches import evolution_disabled
    from evolution.tournament.runner import Options, run_tournament

    paths = locate_project()
    if reason := evolution_disabled(paths.root):
        from aigentflow.exceptions import UsageError

        raise UsageError(f"self-evolution is disabled ({reason}); no tournament was started. Lift it with "
                         "`aigentflow canary enable-evolution`.")

    from evolution.tournament.progress import MatchBars, match_line

    def said(match: dict[str, Any]) -> None:
        if not json_out:
            echo(match_line(match))

    options = Options(role=role, versions=_versions(versions), matches=matches, tasks=_versions(tasks), model=model,
                      address=address, on_match=said, stop=lambda: evolution_disabled(paths.root))
    if json_out:  # stdout holds the JSON document only: whatever Ray or a library prints meanwhile goes to stderr
        with _stdout_to_stderr():
            summary = run_tournament(paths, options)
    elif _live(paths.root):  # a terminal: a progress bar per match batch (a pair of versions)
        bars = MatchBars()
        options.on_match, options.on_schedule = bars.match, bars.schedule
        with bars.progress:
            summary = run_tournament(paths, options)
    else:
        summary = run_tournament(paths, options)
    if json_out:
        print_json(summary)
        return
    rate = summary["matches_per_minute"]
    resumed = f", resumed after {summary['resumed_from']}" if summary["resumed_from"] else ""
    speed = f", {rate:.0f}/min" if rate else ""
    echo(f"tournament {summary['tournament']}: {summary['recorded']}/{summary['planned']} matches recorded "
         f"({summary['played_now']} now{resumed}{speed}), {summary['status']}")
    for problem in summary["unavailable"]:
        echo(f"not graded (run again to retry): {problem}")
    _print_leaderboard(summary["leaderboard"], f"leaderboard: {role}")
    if summary["unavailable"] or summary["status"] == "stopped":
        raise typer.Exit(1)


@app.command()
@reports_errors
def leaderboard(
    role: Annotated[str | None, typer.Option(help="Only this role.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the ratings as JSON.")] = False,
) -> None:
    """Each rated version: mu, sigma, the conservative rating (mu - 3 sigma), a 95% interval, its record."""
    from aigentflow.project.paths import locate_project
    from evolution.tournament.store import ratings

    rows = ratings(locate_project().root, role)
    if json_out:
        print_json({"ratings": rows})
        return
    _print_leaderboard(rows, "leaderboard")


@app.command("tasks")
@reports_errors
def list_tasks(
    json_out: Annotated[bool, typer.Option("--json", help="Print the tasks as JSON.")] = False,
) -> None:
    """The benchmark tasks: shipped ones and the project's (.aigentflow/benchmarks/)."""
    from aigentflow.cli.plain import echo, table
    from aigentflow.project.paths import locate_project
    from evolution.tournament.tasks import load_suite

    suite = load_suite(locate_project().state_dir / "benchmarks")
    rows = [{"id": t.id, "role": t.role, "language": t.language, "title": t.title, "source": t.source}
            for t in suite.values()]
    if json_out:
        print_json({"tasks": rows})
        return
    echo(table(("id", "role", "language", "title", "source"), [tuple(r.values()) for r in rows],
               title=f"{len(rows)} benchmark tasks"))


@app.command()
@reports_errors
def promote(
    role: Annotated[str, typer.Argument(help="The role.")],
    version: Annotated[str, typer.Argument(help="The candidate version.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
) -> None:
    """Promote VERSION of ROLE if it meets the criteria against the version runs use now (at least
    evolution.minTournamentMatches matches, sigma low enough, P(better) >= 0.95); exit 1 if it stays a
    candidate. With evolution.requireApproval the promotion then awaits `tournament approve`."""
    from aigentflow.cli.plain import echo
    from aigentflow.project.paths import locate_project
    from evolution.tournament.promotion import decide

    decision = decide(locate_project(), role, version)
    if json_out:
        print_json(decision)
    else:
        echo(f"{role} {version} vs {decision['incumbent']}: P(better) = {decision['p_better']:.3f}: "
             f"{decision['status']}")
        for reason in decision["reasons"]:
            echo(f"  - {reason}")
        if decision["status"] == "awaiting_approval":
            echo(f"approve it with `aigentflow tournament approve {role} {version}`")
    if decision["status"] == "candidate":
        raise typer.Exit(1)


@app.command()
@reports_errors
def approve(
    role: Annotated[str, typer.Argument(help="The role.")],
    version: Annotated[str, typer.Argument(help="The promoted version awaiting approval.")],
) -> None:
    """Approve a promotion that awaits it (evolution.requireApproval)."""
    from aigentflow.cli.plain import echo
    from aigentflow.project.paths import locate_project
    from evolution.tournament.promotion import approve as approve_promotion

    approve_promotion(locate_project(), role, version)
    echo(f"{role} {version}: promotion approved")
