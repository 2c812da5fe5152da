"""`aigentflow admin`: operator switches, persisted in the store's controls until lifted.

`emergency --pause-all` stops every run at its next step boundary (and before any model call), until
`--resume-all`. `emergency --disable-generated-agents` makes every run (and every resume) use the built-in
version of a role whose chosen version was generated (`aigentflow evolve`), until `--enable-generated-agents`.
`emergency --disable-evolution` stops self-evolution (mining, generation, tournaments, canaries), until
`--enable-evolution` (the same switch as `aigentflow canary disable-evolution`). `emergency --single-tenant-mode`
turns multi-tenant routing off (new runs go to the operator tenant, the HTTP API serves only it; nothing is
moved or deleted), until `--multi-tenant-mode`.

`rollback PHASE [--undo]`: the rollout plan's per-phase rollback procedures (``aigentflow.rollback``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aigentflow.cli.common import print_json, reports_errors
from aigentflow.cli.plugins import PluginGroup

# PluginGroup: command plugins may add sub-commands, see aigentflow.cli.plugins (evolution adds a rollback phase).
app = typer.Typer(help="Operator commands: emergency switches, phase rollbacks.", no_args_is_help=True,
                  cls=PluginGroup)


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
    single_tenant: Annotated[bool, typer.Option(
        "--single-tenant-mode",
        help="Multi-tenant routing off: new runs are recorded under the operator tenant, the HTTP API serves only "
             "its tokens; every tenant's data stays.")] = False,
    multi_tenant: Annotated[bool, typer.Option("--multi-tenant-mode", help="Lift --single-tenant-mode.")] = False,
    reason: Annotated[str, typer.Option(help="Why (kept with --disable-evolution and in the audit log).")]
    = "admin emergency",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Emergency switches; with no option, show them."""
    from aigentflow import emergency as switches
    from aigentflow.exceptions import UsageError
    from aigentflow.project.paths import locate_project
    from aigentflow.roles import evolution_switch
    from aigentflow.store.sqlite import SQLiteRunStore
    from aigentflow.tenants.mode import set_single_tenant_mode

    given = {"pause_all": (pause_all, resume_all), "disable_generated_agents": (disable_generated, enable_generated),
             "disable_evolution": (disable_evolution, enable_evolution),
             "single_tenant_mode": (single_tenant, multi_tenant)}
    for key, (on, off) in given.items():
        name, lift, _ = switches.SWITCHES[key]
        if on and off:
            raise UsageError(f"--{name} and {lift} contradict each other; give one.")
    paths = locate_project()
    if disable_evolution or enable_evolution:
        evolution_switch.set_evolution_disabled(paths.state_dir, disable_evolution, reason if disable_evolution else "")
    store = SQLiteRunStore(paths.database)
    try:
        if pause_all or resume_all:
            store.set_control(switches.PAUSE_ALL, pause_all)
            store.append_audit("admin.emergency", None, {"pause_all": pause_all, "reason": reason})
        if disable_generated or enable_generated:
            store.set_control(switches.DISABLE_GENERATED, disable_generated)
            store.append_audit("admin.emergency", None, {"disable_generated_agents": disable_generated,
                                                         "reason": reason})
        if single_tenant or multi_tenant:
            set_single_tenant_mode(store, single_tenant, reason)
        state = switches.read(store, paths.state_dir)
    finally:
        store.close()
    if json_out:
        print_json(state)
        return
    for line in switches.describe(state):
        typer.echo(line)


@app.command()
@reports_errors
def rollback(
    phase: Annotated[str, typer.Argument(
        help="The phase rolled back: mvp (a fresh start: .aigentflow/ archived and removed), v1.0 (the new agents "
             "off, back to the core agents), v2.0 (self-evolution off, back to v1.0 behaviour; `v1` is its first "
             "name) or enterprise (multi-tenant routing off, single-tenant).")],
    undo: Annotated[bool, typer.Option("--undo", help="Restore what the phase's latest rollback changed, from its "
                                                      "export (or the one --export names).")] = False,
    export: Annotated[Path | None, typer.Option("--export", help="With --undo: the export to restore from.")]
    = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The rollout plan's phase rollback: export what it removes or disables (the file is printed), turn the
    phase's flags off, apply its fallbacks, audit it (`admin.rollback`); safe to run again; `--undo` reverses it."""
    from aigentflow.exceptions import UsageError
    from aigentflow.rollback import export as exports
    from aigentflow.rollback import phase_of

    chosen = phase_of(phase)
    if export is not None and not undo:
        raise UsageError("--export names the export an --undo restores from; add --undo. Nothing changed.")
    module = _phase_module(chosen)
    paths = _project(chosen, undo)
    if undo:
        done = module.undo(paths, export.resolve() if export else exports.latest(paths, chosen))
    else:
        done = module.rollback(paths)
    if json_out:
        print_json(done)
        return
    for line in module.describe(done):
        typer.echo(line)


def _phase_module(phase: str) -> Any:
    """The module rolling ``phase`` back: aigentflow's own, else a command plugin's (``ROLLBACK_PHASES``)."""
    from aigentflow.exceptions import UsageError
    from aigentflow.rollback import CORE, ROLLBACK_PHASES

    name = CORE.get(phase)
    if name is None:
        from aigentflow.cli.plugins import plugin_attribute

        name = plugin_attribute(ROLLBACK_PHASES).get(phase)
    if name is None:
        raise UsageError(f"the {phase} rollback comes with the evolution package (evolution/), which is not installed "
                         "here. Nothing changed.")
    return __import__(name, fromlist=["rollback"])


def _project(phase: str, undo: bool) -> Any:
    """The project: initialised, except for the undo of an MVP rollback (which removed its state)."""
    from aigentflow.project.paths import ProjectPaths, find_git_root, locate_project

    if phase == "mvp" and undo:
        from aigentflow.exceptions import NotAGitRepository

        root = find_git_root(Path.cwd())
        if root is None:
            raise NotAGitRepository(f"{Path.cwd()} is not inside a git repository; run this in the project.")
        return ProjectPaths(root)
    return locate_project()
