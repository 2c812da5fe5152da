"""The run host: one detached actor per node, in which every run started on that node lives.

A run used to start two processes of its own (its Orchestrator and its Git Agent, each a new Ray
worker importing aigentflow: about a second on a warm cluster, more on a fresh one). The host is
started once per node and kept: each run is an ``Orchestrator`` object driving on one of the host's
threads (the "runs" concurrency group; agents' ``check_controls`` calls are answered on the default
group's threads), and the host keeps one Git Agent actor per project (the few used last), so a run
on a warm node starts in milliseconds.

Runs are kept apart: each has its own Orchestrator (its project's paths, stores, Git Agent, Tool
Router); a run's errors end in its own thread, and what it opened is closed when it ends.

The run's driver (``aigentflow run``/``resume``/``demo``, ``jobs/run.py``, on this node) is its owner
and its pid the run's claim. The host does not die with the driver, so it looks: at every boundary
and before every model call, a run whose driver is gone (``kill -9``) is paused, PAUSED and
unclaimed, and `aigentflow resume` continues it. A driver stopping its run at once (a second Ctrl-C,
SIGTERM) calls ``stop``: the run writes nothing more, its waits end within ``STOP_POLL_S``, and the
driver records the pause itself.
"""

from __future__ import annotations

import threading
from typing import Any

import ray

RUN_THREADS = 64
"""Runs one host drives at once (each holds a thread of the "runs" group while it drives)."""
TAKE_OVER_TIMEOUT_S = 120.0
"""How long a resumed run waits for an ownerless engine of the same run on this host to stop."""


def _warm_task_worker() -> None:
    """A no-op Ray task: the worker process it starts (Ray keeps it for the host's later tasks) has
    what build, test and coverage tasks import loaded already."""
    import aigentflow.checks.build
    import aigentflow.sandbox  # noqa: F401


class RunHost:
    role = "run_host"

    def __init__(self) -> None:
        import actors.orchestrator  # noqa: F401 - loaded once, before the first run needs it

        self._lock = threading.Lock()
        self._runs: dict[str, Any] = {}
        self._finished: dict[str, threading.Event] = {}

    def ping(self) -> str:
        return self.role

    def runs(self) -> list[str]:
        """The ids of the runs driving in this host now."""
        with self._lock:
            return sorted(self._runs)

    @ray.method(concurrency_group="runs")
    def drive(self, project_root: str, run_id: str, options: Any, resume: bool = False) -> dict[str, Any]:
        """Drive ``run_id`` to a stop on this thread; the Orchestrator's answer (``Orchestrator.drive``)."""
        from actors.orchestrator import Orchestrator

        self._take_over(run_id)
        orchestrator = Orchestrator(project_root, run_id, options, host=self)
        finished = threading.Event()
        with self._lock:
            self._runs[run_id], self._finished[run_id] = orchestrator, finished
        try:
            self._warm_task_worker(orchestrator)
            return orchestrator.drive(resume)
        finally:
            with self._lock:
                if self._runs.get(run_id) is orchestrator:
                    del self._runs[run_id], self._finished[run_id]
            finished.set()

    def _take_over(self, run_id: str) -> None:
        """A run resumed while an engine of it whose driver is gone still winds down here: stop that one
        (it writes nothing more) and wait for it, so that one run never has two engines."""
        with self._lock:
            old, finished = self._runs.get(run_id), self._finished.get(run_id)
        if old is not None and finished is not None:
            old.stopped.set()
            finished.wait(TAKE_OVER_TIMEOUT_S)

    def stop(self, run_id: str) -> bool:
        """Stop ``run_id`` at once (its driver records the pause): it writes nothing more. False if it is
        not driving here."""
        with self._lock:
            orchestrator = self._runs.get(run_id)
        if orchestrator is None:
            return False
        orchestrator.stopped.set()
        return True

    def check_controls(self, run_id: str) -> str | None:
        """Why agents of ``run_id`` must not call their model now, or None (``Orchestrator.check_controls``)."""
        with self._lock:
            orchestrator = self._runs.get(run_id)
        if orchestrator is None:
            return f"run {run_id} is not driving any more"
        return orchestrator.check_controls(run_id)

    # -- what runs share: the node's Git Agent, a warm task worker ---------------------------------------

    def git_agent_for(self, run_id: str, project_root: str, fault_plan: Any = None) -> Any:
        """``project_root``'s Git Agent (a ``ProjectGit``) on this node, kept across runs."""
        from actors.factory import git_agent_actor

        return git_agent_actor(project_root, fault_plan)

    def _warm_task_worker(self, orchestrator: Any) -> None:
        """For a run that builds: a task worker of this host's job, up and importing before BUILDING needs
        one (the host's tasks run in its job's workers, which Ray keeps for later tasks; a no-op when one is idle)."""
        from aigentflow.run.statemachine import State, enabled_states

        if State.BUILDING not in enabled_states(orchestrator.flags):
            return
        from actors.factory import remote_task, this_node

        remote_task(_warm_task_worker).options(num_cpus=0, scheduling_strategy=this_node()).remote()
