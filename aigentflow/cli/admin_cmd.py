"""`aigentflow admin`: operator switches, persisted in the store's controls until lifted.

`emergency --pause-all` stops every run at its next step boundary (and before any model call), until
`--resume-all`. `emergency --disable-generated-agents` makes every run (and every resume) use the built-in
version of a role whose chosen version was generated (`aigentflow evolve`), until `--enable-generated-agents`.
`emergency --disable-evolution` stops self-evolution (mining, generation, tournaments, canaries), until
`--enable-evolution` (the same switch as `aigentflow canary disable-evolution`)."""

from __future__ import annotations

from typing import Annotated

import typer

from aigentflow.cli.common import print_json, reports_errors
from aigentflow.cli.plugins import PluginGroup

# PluginGroup: command plugins add sub-commands (evolution's `admin rollback v1`), see aigentflow.cli.plugins.
app = typer.Typer(help="Operator commands: emergency switches.", no_args_is_help=True, cls=PluginGroup)


@app.command()
@reports_errors
def emergency(
    pause_all: Annotated[bool, typer.Option("--pause-all", help="Stop every run at its next step boundary.")] = False,
    resume_all: Annotated[bool, typer.Option(
        "--resume-all", help="Lift --pause-all (paused runs need `aigentflow resume`).")] = False,
    disable_generated: Annotated[bool, typer.Option(
        "--disable-generated-agents",
        help="No generated role version runs: runs and resumes fall back to the built-in versions.")] = False,
    enable_generated: Annotated[bool, typer.Option(
        "--enable-generated-agents", help="Lift --disable-generated-agents.")] = False,
    disable_evolution: Annotated[bool, typer.Option(
        "--disable-evolution",
        help="Stop self-evolution: pattern mining, agent generation, tournaments and canaries refuse or stop.")]
    = False,
    enable_evolution: Annotated[bool, typer.Option("--enable-evolution", help="Lift --disable-evolution.")] = False,
    reason: Annotated[str, typer.Option(help="Why (kept with --disable-evolution and in the audit log).")]
    = "admin emergency",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Emergency switches; with no option, show them."""
    from aigentflow.exceptions import UsageError
    from aigentflow.project.paths import locate_project
    from aigentflow.roles import evolution_switch
    from aigentflow.run.engine import DISABLE_GENERATED, PAUSE_ALL
    from aigentflow.store.sqlite import SQLiteRunStore

    if pause_all and resume_all:
        raise UsageError("--pause-all and --resume-all contradict each other; give one.")
    if disable_generated and enable_generated:
        raise UsageError("--disable-generated-agents and --enable-generated-agents contradict each other; give one.")
    if disable_evolution and enable_evolution:
        raise UsageError("--disable-evolution and --enable-evolution contradict each other; give one.")
    paths = locate_project()
    if disable_evolution or enable_evolution:
        evolution_switch.set_evolution_disabled(paths.state_dir, disable_evolution, reason if disable_evolution else "")
    evolution_off = evolution_switch.evolution_off(paths.state_dir)
    store = SQLiteRunStore(paths.database)
    try:
        if pause_all or resume_all:
            store.set_control(PAUSE_ALL, pause_all)
            store.append_audit("admin.emergency", None, {"pause_all": pause_all})
        if disable_generated or enable_generated:
            store.set_control(DISABLE_GENERATED, disable_generated)
            store.append_audit("admin.emergency", None, {"disable_generated_agents": disable_generated})
        state = bool(store.get_control(PAUSE_ALL, False))
        generated_off = bool(store.get_control(DISABLE_GENERATED, False))
    finally:
        store.close()
    if json_out:
        print_json({"pause_all": state, "disable_generated_agents": generated_off,
                    "disable_evolution": evolution_off is not None, "evolution_disabled_reason": evolution_off})
    else:
        typer.echo(f"pause-all is {'ON: runs stop at their next step boundary' if state else 'off'}")
        typer.echo(f"disable-generated-agents is "
                   f"{'ON: runs use the built-in versions instead of generated ones' if generated_off else 'off'}")
        said = f"ON ({evolution_off}): no mining, generation, tournaments or canaries" if evolution_off else "off"
        typer.echo(f"disable-evolution is {said}")
