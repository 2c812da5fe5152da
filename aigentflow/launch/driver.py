"""The driver side of a run: check it, connect to Ray, record it, hand it to the run host, follow it.

``start_run`` and ``resume_run`` are what `aigentflow run`, `demo` and `resume` (``cli/run_cmd.py``)
and ``jobs/run.py`` call: the same checks in the same order, and nothing is recorded if a check
fails or Ray cannot be reached. The driver writes the run's creation; from then on the run's engine
in the node's run host owns the run, and the driver only reads the store to show progress. Ctrl-C
asks the run to pause before its next model call or step; a second Ctrl-C (or SIGTERM) stops it at
once, leaving it PAUSED and resumable either way. The driver's pid is the run's claim: a driver
killed outright leaves the run to be paused by the host at its next check (``actors/run_host.py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aigentflow.exceptions import AigentflowError, UsageError
from aigentflow.project.paths import ProjectPaths
from aigentflow.run.progress import ProgressWatcher
from aigentflow.run.runner import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PAUSED,
    Outcome,
    _store_call,
    engine_options,
    force_pause,
    plan_run,
    record_run,
    spec_for_existing_run,
)
from aigentflow.store.records import RunRecord

STOP_TIMEOUT_S = 10.0
"""How long a second Ctrl-C waits for the run host to take the stop (it answers in milliseconds)."""
KEEPER_START_TIMEOUT_S = 60.0
"""How long a driver waits for a new keeper to bring up the node's run host."""
_connected: dict[str, bool] = {"keeper": False}
"""``keeper``: this process connected (through ``connect``) to a cluster it did not start, and ends before
it: the node's run host must not live in this process's job (see ``run_host``)."""


class NotStarted(AigentflowError):
    """Interrupted (Ctrl-C) before the run was recorded: nothing was."""

    exit_code = EXIT_INTERRUPTED


class Console:
    """What a run's driver tells its user: plain lines by default (``jobs/run.py``); the CLI's add a live
    display or JSON lines (``aigentflow.genui``)."""

    observer: Callable[[dict[str, Any]], None] | None = None
    """Given every progress event (``aigentflow.run.progress``) as the run goes, when set."""
    event_lines = True
    """Whether ``following``'s line function gets a line per event (False: only messages, for a console
    whose observer draws the events itself)."""

    def say(self, message: str) -> None:
        print(message, flush=True)

    def warn(self, message: str) -> None:
        import sys

        print(message, file=sys.stderr, flush=True)

    def begin(self, run: RunRecord) -> None:
        """Called once the run is recorded (or found, to resume), before it is followed: a console may
        choose its display by the run's flags (``platform.genUIOutput``)."""

    @contextmanager
    def following(self) -> Iterator[tuple[Callable[[str], None] | None, Callable[[str], None] | None]]:
        """While the run is driven: (a line per transition and step, what to call on each new state)."""
        yield self.say, None


def start_run(paths: ProjectPaths, request: str, overrides: dict[str, str], *, record: str | None = None,
              console: Console | None = None, run_id: str | None = None) -> Outcome:
    """Check the run, connect to Ray, record the run (under ``run_id``, if given), drive it to a stop."""
    from aigentflow.models.spec import LENIENT_NOTICE

    console = console or Console()
    plan = plan_run(paths, request, overrides, record=record)
    plan.run_id = run_id
    address = plan.settings.run.ray_address or os.environ.get("RAY_ADDRESS") or None
    if plan.spec.lenient:
        console.warn(f"warning: {LENIENT_NOTICE}.")
    where = "" if _ray_connected() else f"; connecting to Ray at {address}..." if address else "; starting Ray..."
    console.say(f"Model {plan.spec.name}{where}")
    connect(plan.settings.run.ray_address or None, include_dashboard=plan.settings.run.include_dashboard,
            agent_resource=plan.settings.run.agent_resource)
    run = record_run(paths, plan)
    console.say(f"Run {run.id}: {run.request[:100]}")
    return follow(paths, run, engine_options(run, plan.spec), resume=False, console=console)


def resume_run(paths: ProjectPaths, run_id: str, *, address: str | None = None,
               console: Console | None = None) -> Outcome:
    """Check that the run may continue (not final, not paused by the emergency switch, not driven by a
    live process), connect to Ray, drive it on from its last committed step."""
    from aigentflow.emergency import PAUSE_ALL
    from aigentflow.run.statemachine import State, is_terminal
    from aigentflow.store.sqlite import SQLiteRunStore
    from aigentflow.tenants.mode import DEFAULT_TENANT

    console = console or Console()
    store = SQLiteRunStore(paths.database)
    try:
        run = store.get_run(store.resolve_run_id(run_id))
        paused_all = store.get_control(PAUSE_ALL, False, tenant_id=DEFAULT_TENANT)
        if not is_terminal(State(run.state)) and not paused_all:
            from aigentflow.tenants.quotas import admit

            admit(store, paths.root, run.tenant_id, new_run=False, run_id=run.id)  # an exhausted quota: before Ray
    finally:
        store.close()
    if is_terminal(State(run.state)):
        raise UsageError(f"run {run.id} is {run.state}, which is final; start a new one with `aigentflow run`.")
    if paused_all:
        raise UsageError("emergency pause-all is on; lift it with `aigentflow admin emergency --resume-all` first.")
    if run.owner_alive_here():
        raise UsageError(f"run {run.id} is being driven right now by process {run.owner_pid}; wait for it, or stop "
                         "that process first (Ctrl-C pauses it).")
    spec = spec_for_existing_run(paths, run)
    console.say(f"Resuming run {run.id} from {run.state}...")
    connect(address or run.settings["run"]["ray_address"] or None,
            include_dashboard=run.settings["run"]["include_dashboard"],
            agent_resource=run.settings["run"].get("agent_resource", ""))
    return follow(paths, run, engine_options(run, spec), resume=True, console=console)


def _ray_connected() -> bool:
    import sys

    return "ray" in sys.modules and sys.modules["ray"].is_initialized()


def connect(address: str | None, *, include_dashboard: bool = False, agent_resource: str = "") -> None:
    """Connect to Ray (``connect_ray``), then ask for the Model Gateway and this node's run host, which
    start in the background (the gateway imports litellm: seconds on a fresh Ray) while the caller
    records its run (or, ``aigentflow demo``, makes its sample project)."""
    from aigentflow.cluster.connect import connect_ray, running_local_cluster

    if _ray_connected():
        return  # connected already (``aigentflow demo``, or the caller's own ``connect_ray``)
    existing = bool(address or os.environ.get("RAY_ADDRESS") or running_local_cluster())
    try:
        connect_ray(address, include_dashboard=include_dashboard)
        _connected["keeper"] = existing
        prestart(agent_resource)
    except KeyboardInterrupt:
        raise NotStarted("interrupted before the run started; nothing was recorded.") from None


def prestart(agent_resource: str = "") -> None:
    """Ask for the Model Gateway and this node's run host (on a running cluster: its keeper is started
    and the host awaited, the first time), and say hello to the host on a thread of its own: a process's
    first actor call sets up Ray's serialisation (importing pydantic.v1, starlette: a tenth of a second
    or more), which is then done while the caller records its run (or makes the demo's sample project)."""
    import threading

    from actors.factory import model_gateway_actor

    model_gateway_actor(agent_resource)
    host = run_host()
    threading.Thread(target=host.ping.remote, name="aigentflow-hello", daemon=True).start()


def run_host() -> Any:
    """This node's run host. A driver that connected to a running cluster (``connect``) has it created by
    a keeper (``keeper.py``) started the first time, so that the host's job outlives the driver; one
    that started its own Ray, or connected on its own (a library caller, which owns its lifetime),
    creates it itself."""
    import subprocess
    import sys
    import time

    import ray

    from actors.factory import NAMESPACE, run_host_actor, run_host_actor_name

    if not _connected["keeper"]:
        return run_host_actor()
    name = run_host_actor_name(ray.get_runtime_context().get_node_id())
    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        pass
    # -P: the working directory (a user's project) is not put on the keeper's sys.path, which Ray
    # hands on to the host's workers.
    subprocess.Popen([sys.executable, "-P", "-m", "aigentflow.launch.keeper", ray.get_runtime_context().gcs_address],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)
    deadline = time.monotonic() + KEEPER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            return ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            time.sleep(0.05)
    return run_host_actor()  # no keeper came up: a host of this job's still drives the run


def follow(paths: ProjectPaths, run: RunRecord, options: Any, *, resume: bool,
           console: Console | None = None) -> Outcome:
    """Drive the run in the node's run host, showing progress as ``console`` does."""
    console = console or Console()
    console.begin(run)
    with console.following() as (show, on_state):
        return drive(paths, run, options, resume=resume, show=show, on_state=on_state, on_event=console.observer,
                     event_lines=console.event_lines)


def drive(paths: ProjectPaths, run: RunRecord, options: Any, *, resume: bool, show: Any = None,
          on_state: Any = None, on_event: Any = None, event_lines: bool = True) -> Outcome:
    """Hand the run to this node's run host and wait for it, showing progress; handles Ctrl-C."""
    import ray

    from actors.factory import model_gateway_actor

    # Asked for together: the Model Gateway (importing litellm takes seconds on a fresh cluster; the
    # run's agents start in the host) and the host (once per node; then it takes the run at once).
    model_gateway_actor(options.agent_resource)
    host = run_host()
    pending = host.drive.remote(str(paths.root), run.id, options, resume)
    watcher = ProgressWatcher(paths, run.id, show, on_state, on_event, lines=event_lines)
    interrupts = 0
    result: dict[str, Any] | None = None
    sigterm = _SigtermAsInterrupt()
    try:
        while result is None:
            try:
                ready, _ = ray.wait([pending], timeout=0.2)
                watcher.poll()
                if ready:
                    result = _result_or_crash(paths, run.id, pending)
            except KeyboardInterrupt:
                interrupts += 1
                if interrupts == 1 and not sigterm.received:
                    _store_call(paths, lambda s: s.request_pause(run.id))
                    watcher.say("Pausing before the next model call or step (Ctrl-C again to stop now)...")
                else:
                    why = "stopped (SIGTERM)" if sigterm.received else "stopped by a second Ctrl-C"
                    _stop(host, run.id)
                    force_pause(paths, run.id, why)
                    result = {"state": "PAUSED", "error": why, "outcome": "paused"}
    finally:
        sigterm.restore()
    watcher.poll()
    code = {"completed": EXIT_OK, "waiting": EXIT_PAUSED, "failed": EXIT_FAILED}.get(result["outcome"])
    if result["outcome"] == "paused":
        code = EXIT_INTERRUPTED if interrupts else EXIT_PAUSED
    if result["outcome"] == "error":
        code = int(result.get("exit_code", EXIT_FAILED))
    return Outcome(run.id, result["state"], result.get("error"), EXIT_FAILED if code is None else code,
                   lenient=bool(getattr(options.model_spec, "lenient", False)))


def _stop(host: Any, run_id: str) -> None:
    """Tell the host to stop the run at once (it writes nothing more); the caller records the pause."""
    from contextlib import suppress

    import ray

    # A host that is gone or slow: the pause recorded next stands, and once this process exits the
    # host's checks find the run's driver gone.
    with suppress(ray.exceptions.RayError, KeyboardInterrupt):
        ray.get(host.stop.remote(run_id), timeout=STOP_TIMEOUT_S)


class _SigtermAsInterrupt:
    """While a run is driven, SIGTERM (e.g. `aigentflow jobs stop`) stops it at once, as a second
    Ctrl-C would, leaving it PAUSED and resumable. (Ray re-raises interrupts as plain
    KeyboardInterrupt, so the signal is remembered here rather than in the exception's type.)"""

    def __init__(self) -> None:
        import signal
        import threading

        self.received = False
        self._previous: Any = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = True
        raise KeyboardInterrupt

    def restore(self) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def _result_or_crash(paths: ProjectPaths, run_id: str, pending: Any) -> dict[str, Any]:
    """The host's answer; if the run's engine (or the host) died, the run stays where the store says, resumable."""
    import ray

    try:
        return ray.get(pending)
    except ray.exceptions.RayError as exc:
        state = _store_call(paths, lambda s: s.get_run(run_id).state)
        return {"state": state, "outcome": "error", "exit_code": EXIT_FAILED,
                "error": f"the run's engine stopped unexpectedly ({type(exc).__name__}); the run is still {state} "
                         f"and `aigentflow resume {run_id}` continues it. Cause: {str(exc)[:500]}"}
