"""``aigentflow canary status|advance|rollback|incidents`` and the self-evolution kill switch
(``canary disable-evolution|enable-evolution``): thin wiring around ``canary`` and ``switches``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from aigentflow.cli.common import print_json, reports_errors

app = typer.Typer(
    help="Roll a promoted role version out to 10%, 25%, 50%, then 100% of runs, each stage held until its "
         "checks pass against the incumbent; regressions roll back.",
    no_args_is_help=True, rich_markup_mode=None, add_completion=False,
)
Role = Annotated[str, typer.Argument(help="The role (e.g. backend_developer).")]
Json = Annotated[bool, typer.Option("--json", help="Print it as JSON.")]


def _say(state: dict[str, Any]) -> None:
    from aigentflow.cli.plain import echo

    if state.get("status") == "none":
        echo(f"{state['role']}: no canary")
        return
    if state.get("stage") == "shadow":
        echo(f"{state['role']}: {state['candidate']} in shadow mode beside {state['incumbent']} (no run is routed to "
             f"it; it plays each step on a copy, its output discarded), {state['status']}")
    else:
        echo(f"{state['role']}: {state['candidate']} at {state['percent']}% of runs (incumbent {state['incumbent']}), "
             f"{state['status']}")
    shadow = state.get("shadow")
    if shadow:
        mine, theirs = shadow["candidate"], shadow["incumbent"]
        echo(f"shadow runs: {mine['runs']}; candidate passed {mine['passed']} (grade {mine['grade']}), incumbent "
             f"passed {theirs['passed']} (grade {theirs['grade']}); candidate {mine['seconds']} s, "
             f"${mine['cost_usd']:.4f} vs {theirs['seconds']} s, ${theirs['cost_usd']:.4f}")
        if mine.get("tasks") or theirs.get("tasks"):
            echo(f"shadowed build tasks: tests passed for the candidate in {mine['tasks_passed']} of {mine['tasks']}, "
                 f"for the incumbent in {theirs['tasks_passed']} of {theirs['tasks']}")
    if state.get("status") == "rolled_back":
        echo(f"rolled back: {state.get('rollback_reason')} (incident {state.get('incident', '?')})")
    analysis = state.get("analysis")
    if analysis:
        mine, theirs = analysis["candidate"], analysis["incumbent"]
        echo(f"stage checks: {analysis['verdict']}; candidate {mine['runs']} runs (success {mine['success_rate']}), "
             f"incumbent {theirs['runs']} runs (success {theirs['success_rate']})"
             + (f"; test pass rate {mine['test_pass_rate']} vs {theirs['test_pass_rate']}"
                if theirs.get("test_pass_rate") is not None else "")
             + (f"; {analysis['needs_runs']} more candidate runs needed" if analysis["needs_runs"] else ""))


def with_shadow(paths: Any, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with its shadow stage's results (``shadow``), while or once it had one."""
    if state.get("status") == "none" or not any(h.get("stage") == "shadow" for h in state.get("history", [])):
        return state
    from evolution.rollout.shadow import summary

    shadow_stage = next(h for h in state["history"] if h.get("stage") == "shadow")
    return {**state, "shadow": summary(paths, {**state, "stage_started_at": shadow_stage["at"]})}


@app.command()
@reports_errors
def status(role: Role, json_out: Json = False) -> None:
    """The canary's stage and its checks so far (a regression found here is rolled back at once)."""
    from aigentflow.project.paths import locate_project
    from evolution.rollout.canary import status as canary_status

    paths = locate_project()
    state = with_shadow(paths, canary_status(paths, role))
    print_json(state) if json_out else _say(state)
    if state.get("status") == "rolled_back" and state.get("incident") and "analysis" not in state:
        raise typer.Exit(1)


@app.command()
@reports_errors
def advance(role: Role, json_out: Json = False) -> None:
    """Start the approved promotion's canary at 10%, or move it to the next stage when its checks pass;
    exit 1 (nothing changed) while they do not, or when a regression rolled it back."""
    from aigentflow.project.paths import locate_project
    from evolution.rollout.canary import advance as canary_advance

    paths = locate_project()
    state = with_shadow(paths, canary_advance(paths, role))
    print_json(state) if json_out else _say(state)
    if not state.get("advanced"):
        raise typer.Exit(1)


@app.command()
@reports_errors
def rollback(role: Role, reason: Annotated[str, typer.Option(help="Why, for the incident.")] = "manual rollback",
             json_out: Json = False) -> None:
    """Route every run back to the incumbent now and record an incident."""
    from aigentflow.project.paths import locate_project
    from evolution.rollout.canary import rollback as canary_rollback

    state = canary_rollback(locate_project(), role, reason)
    print_json(state) if json_out else _say(state)


@app.command()
@reports_errors
def incidents(json_out: Json = False) -> None:
    """The canary rollbacks recorded, oldest first."""
    from aigentflow.cli.plain import echo
    from aigentflow.project.paths import locate_project
    from evolution.rollout.canary import incidents as read_incidents

    rows = read_incidents(locate_project().root)
    if json_out:
        print_json({"incidents": rows})
        return
    for row in rows:
        echo(f"{row['id']} {row['at'][:19]} {row['role']} {row['candidate']} at {row['percent']}%: {row['reason']}")
    if not rows:
        echo("no incidents")


@app.command("disable-evolution")
@reports_errors
def disable(reason: Annotated[str, typer.Option(help="Why (kept with the switch).")] = "kill switch") -> None:
    """Kill switch: tournaments stop at their next match, canaries stop routing runs to candidates and do
    not advance, until `enable-evolution`."""
    from aigentflow.cli.plain import echo
    from aigentflow.project.paths import locate_project
    from evolution.rollout.switches import disable_evolution

    disable_evolution(locate_project().root, reason)
    echo("self-evolution disabled: runs use the incumbent versions; tournaments stop at their next match")


@app.command("enable-evolution")
@reports_errors
def enable() -> None:
    """Lift the kill switch."""
    from aigentflow.cli.plain import echo
    from aigentflow.project.paths import locate_project
    from evolution.rollout.switches import enable_evolution

    echo("self-evolution enabled" if enable_evolution(locate_project().root) else "self-evolution was not disabled")


ROLLBACK_PHASES = {"v2.0": "evolution.rollout.v1"}
"""The phase rollback evolution contributes to aigentflow's ``admin rollback`` (``aigentflow.rollback``): the
v2.0 phase's (``v1`` is its alias), a module with ``rollback``, ``undo`` and ``describe``."""
