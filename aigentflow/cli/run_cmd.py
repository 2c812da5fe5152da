"""`aigentflow run`, `resume` and `demo`: the commands that start Ray and drive a run."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer

from aigentflow.cli.common import reports_errors
from aigentflow.demo import DEMO_REQUEST

if TYPE_CHECKING:
    from aigentflow.project.paths import ProjectPaths
    from aigentflow.run.runner import Outcome


ModelOption = Annotated[str | None, typer.Option(
    "--model", "-m", help="litellm model name, e.g. openai/gpt-4o-mini or replay/demo.")]
AddressOption = Annotated[str | None, typer.Option(
    "--address", help="Ray cluster address (default: a local single-node Ray).")]
SetOption = Annotated[list[str] | None, typer.Option(
    "--set", "-c", help="Override a config key: KEY=VALUE (repeatable).")]


JsonOption = Annotated[bool, typer.Option(
    "--json", help="Print the run's progress as JSON lines on stdout, one event a line (`aigentflow schema show "
                   "events`); messages go to stderr.")]


def cli_console(events: IO[str] | None = None) -> object:
    """The launch's console. ``events``: a JSON line for every progress event goes there (``--json``),
    messages to stderr. Else, on a terminal with the run's ``platform.genUIOutput`` flag on, a live display
    of the run (its state, steps and, in BUILDING, a progress bar per task: ``aigentflow.genui.live``);
    otherwise a line per transition and step with a spinner on the state (plain lines off a terminal)."""
    from contextlib import contextmanager

    from aigentflow.launch.driver import Console

    class TerminalConsole(Console):
        live = False

        def say(self, message: str) -> None:
            typer.echo(message)

        def warn(self, message: str) -> None:
            typer.echo(message, err=True)

        def begin(self, run) -> None:  # type: ignore[no-untyped-def]
            from aigentflow.genui.render import use_rich

            self.live = use_rich(run.flags)
            self.event_lines = not self.live

        @contextmanager
        def following(self):  # type: ignore[no-untyped-def]
            from rich.console import Console as Rich

            rich = Rich(highlight=False)
            if self.live:
                from rich.live import Live

                from aigentflow.genui.live import LiveRun

                state = LiveRun()
                with Live(state, console=rich, refresh_per_second=8, transient=False):
                    self.observer = state.apply  # drawn at the next refresh
                    try:
                        yield (lambda line: rich.print(line, markup=False)), None
                    finally:
                        self.observer = None
                return

            from aigentflow.run.statemachine import STATES, State

            def describe(state: str) -> str:
                step = STATES[State(state)].step
                return f"[bold]{state}[/bold]" + (f": {step} step running..." if step else "")

            with rich.status("Starting the orchestrator...") as spinner:
                yield rich.print, (lambda state: spinner.update(describe(state)))

    class JsonConsole(Console):
        def __init__(self, out: IO[str]) -> None:
            from aigentflow.genui.live import JsonLines

            self.observer = JsonLines(out)

        def say(self, message: str) -> None:
            typer.echo(message, err=True)

        def warn(self, message: str) -> None:
            typer.echo(message, err=True)

        @contextmanager
        def following(self):  # type: ignore[no-untyped-def]
            yield self.say, None

    return JsonConsole(events) if events is not None else TerminalConsole()


@contextmanager
def machine_stdout(wanted: bool) -> Iterator[IO[str] | None]:
    """With ``wanted`` (``--json``): the real stdout for the JSON lines, while file descriptor 1 points at
    stderr (whatever Python, Ray or a library prints meanwhile, and every message, goes there)."""
    if not wanted:
        yield None
        return
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    out = os.fdopen(os.dup(saved), "w", buffering=1)
    try:
        yield out
    finally:
        sys.stdout.flush()
        out.close()
        os.dup2(saved, 1)
        os.close(saved)


def _overrides(model: str | None, address: str | None, sets: list[str] | None) -> dict[str, str]:
    from aigentflow.exceptions import UsageError

    overrides: dict[str, str] = {}
    for item in sets or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r} is not KEY=VALUE, e.g. --set model.temperature=0.2")
        overrides[key.strip()] = value
    if model:
        overrides["model.name"] = model
    if address:
        overrides["run.ray_address"] = address
    return overrides


def _waiting_reason(paths: ProjectPaths, run_id: str) -> str:
    from aigentflow.store.sqlite import SQLiteRunStore

    store = SQLiteRunStore(paths.database, readonly=True)
    try:
        transitions = store.transitions(run_id)
    finally:
        store.close()
    return (transitions[-1].reason if transitions else None) or "a human must decide"


def lenient_warning(lenient: bool) -> None:
    if lenient:
        from aigentflow.models.spec import LENIENT_NOTICE

        typer.echo(f"warning: {LENIENT_NOTICE}.", err=True)


def _finish(outcome: Outcome, paths: ProjectPaths, *, lenient: bool = False, events: IO[str] | None = None) -> None:
    """Say how the run ended and where its outputs are (with ``events``: as the last JSON line too); exit
    with the outcome's code."""
    if events is not None:
        from aigentflow.genui.live import JsonLines
        from aigentflow.run.progress import RUN_RESULT, event

        JsonLines(events)(event(RUN_RESULT, outcome.run_id, state=outcome.state, exit_code=outcome.exit_code,
                                error=outcome.error, outputs=str(paths.run_dir(outcome.run_id)), lenient=lenient))
    lenient_warning(lenient)
    _retention_after_run(paths)
    if outcome.exit_code == 0:
        typer.echo(f"Run {outcome.run_id} {outcome.state}. Outputs: {paths.run_dir(outcome.run_id)}")
        return
    if outcome.state == "AWAITING_APPROVAL":
        typer.echo(f"Run {outcome.run_id} is waiting for you: {_waiting_reason(paths, outcome.run_id)}", err=True)
        evidence = paths.run_dir(outcome.run_id) / "evidence.json"
        if evidence.exists():
            typer.echo(f"Evidence: {evidence}", err=True)
        typer.echo(f"Settle it, then `aigentflow resume {outcome.run_id}` retries the step (finished work is "
                   "kept).", err=True)
        raise typer.Exit(outcome.exit_code)
    typer.echo(f"Run {outcome.run_id} stopped in {outcome.state}: {outcome.error}", err=True)
    if outcome.state == "PAUSED":
        typer.echo(f"Resume it with `aigentflow resume {outcome.run_id}`.", err=True)
    raise typer.Exit(outcome.exit_code)


def _retention_after_run(paths: ProjectPaths) -> None:
    """``gdpr.retention_after_runs``: the retention policy applied as a run ends (``aigentflow.gdpr.retention``)."""
    from aigentflow.config.loader import load_config

    settings = load_config(paths.root).settings.gdpr
    if settings.retention_after_runs:
        from aigentflow.gdpr.retention import apply_retention

        report = apply_retention(paths, settings)
        removed = {kind: len(items) for kind, items in report.removed.items() if items}
        if removed:
            typer.echo(f"Retention: removed {removed}", err=True)


def start_run(root: Path, request: str, overrides: dict[str, str], record: str | None = None,
              run_id: str | None = None, events: IO[str] | None = None) -> None:
    """Check the run, connect to Ray, record the run, drive it (``aigentflow.launch``). Nothing is
    recorded if a check fails or Ray cannot be reached. ``events``: where the JSON lines go (``--json``)."""
    from aigentflow.launch.driver import start_run as launch
    from aigentflow.project.paths import locate_project

    paths = locate_project(root)
    if run_id is not None:
        _check_new_run_id(paths, run_id)
    outcome = launch(paths, request, overrides, record=record, console=cli_console(events),  # type: ignore[arg-type]
                     run_id=run_id)
    _finish(outcome, paths, lenient=outcome.lenient, events=events)


def _check_new_run_id(paths: ProjectPaths, run_id: str) -> None:
    """``--run-id``: an id of the form runs get (``YYMMDD-HHMMSS-xxxx``) that no run has yet."""
    import re

    from aigentflow.exceptions import UnknownRun, UsageError
    from aigentflow.store.sqlite import SQLiteRunStore

    if not re.fullmatch(r"\d{6}-\d{6}-[0-9a-f]{4}", run_id):
        raise UsageError(f"--run-id {run_id!r} is not a run id (YYMMDD-HHMMSS-xxxx, xxxx hex digits).")
    with SQLiteRunStore(paths.database) as store:
        try:
            store.get_run(run_id)
        except UnknownRun:
            return
    raise UsageError(f"--run-id {run_id}: a run with that id exists already; leave --run-id out for a new id.")


def _request_text(request: str | None, request_file: Path | None) -> str:
    import sys

    from aigentflow.exceptions import UsageError

    if (request is None) == (request_file is None):
        raise UsageError("give the feature request either as an argument or with --file PATH (or --file - for stdin).")
    if request_file is None:
        return request or ""
    if str(request_file) == "-":
        return sys.stdin.read()
    try:
        return request_file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the request file {request_file}: {exc}") from None


@reports_errors
def run(
    request: Annotated[str | None, typer.Argument(help="The feature request, in plain words.")] = None,
    request_file: Annotated[Path | None, typer.Option(
        "--file", "-f", help="Read the request from a file ('-': stdin).")] = None,
    model: ModelOption = None,
    address: AddressOption = None,
    record: Annotated[str | None, typer.Option(
        "--record", help="Write the model's replies to this cassette file as the run goes.")] = None,
    sets: SetOption = None,
    run_id: Annotated[str | None, typer.Option(
        "--run-id", hidden=True, help="Record the run under this new id (the HTTP API picks its runs' ids).")] = None,
    json_out: JsonOption = False,
) -> None:
    """Carry a feature request through the agent team; outputs go to .aigentflow/runs/<run_id>/."""
    text = _request_text(request, request_file)
    with machine_stdout(json_out) as events:
        start_run(Path.cwd(), text, _overrides(model, address, sets),
                  record=os.path.abspath(record) if record else None, run_id=run_id, events=events)


@reports_errors
def resume(
    run_id: Annotated[str, typer.Argument(help="Run id or a unique prefix.")],
    address: AddressOption = None,
    json_out: JsonOption = False,
) -> None:
    """Continue an interrupted or paused run from its last committed step."""
    from aigentflow.launch.driver import resume_run
    from aigentflow.project.paths import locate_project

    paths = locate_project()
    with machine_stdout(json_out) as events:
        outcome = resume_run(paths, run_id, address=address, console=cli_console(events))  # type: ignore[arg-type]
        _finish(outcome, paths, events=events)


@reports_errors
def demo(
    directory: Annotated[Path | None, typer.Option(
        "--dir", help="Where to create the sample project (default: a new temp dir).")] = None,
    address: AddressOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create a small sample project and run a real feature request on it, offline (replay model)."""
    with machine_stdout(json_out) as events:
        _demo(directory, address, events)


def _demo(directory: Path | None, address: str | None, events: IO[str] | None) -> None:
    from aigentflow.cli.project_cmd import initialise
    from aigentflow.demo import create_sample_project, demo_settings
    from aigentflow.exceptions import UsageError
    from aigentflow.launch.driver import connect

    target = Path(directory).resolve() if directory else Path(tempfile.mkdtemp(prefix="aigentflow-demo-"))
    if target.exists() and any(target.iterdir()):
        raise UsageError(f"{target} is not empty; give --dir a new or empty directory.")
    typer.echo(f"Connecting to Ray at {address}..." if address else "Starting Ray...")
    connect(address)  # first: the Model Gateway and the run host start while the sample project is made
    create_sample_project(target)
    initialise(target)
    typer.echo(f"Sample project: {target}")
    typer.echo(f"Request: {DEMO_REQUEST}")
    typer.echo("Agents: analyst, project manager, architect, then per task in its own worktree: tester (tests "
               "first), backend developer, bug fixer, reviewer; then the whole suite with coverage, the review "
               "of the feature and the merge into main.")
    from aigentflow.demo import unconfined_reason

    if (reason := unconfined_reason()) is not None:
        typer.echo(f"Sandbox: {reason}.")
    start_run(target, DEMO_REQUEST, {**demo_settings(), **_overrides("replay/demo", address, None)}, events=events)
