"""The one factory that turns a plain agent class into a Ray actor.

Names, namespace, restarts, task retries and concurrency are set here and nowhere else. Agent
actors are named by role and version (``analyst@0.1.0``) and detached, so that on a running cluster
they are created once and reused by every run (creating an actor costs about 0.65 s here, plus the
model library's import). Runs live in their node's run host (``run_host@0.1.0:<node>``, detached too),
with its node's Git Agent (``git_agent@0.1.0:<node>``, serving every project of the node). The dashboard's actor
list so reads as the agent team.
"""

from __future__ import annotations

import functools
from typing import Any

from aigentflow import __version__

NAMESPACE = "aigentflow"
MAX_RESTARTS = 3
# A call to an actor that is down (its node crashed, its process was killed) is retried until the
# actor is back (Ray restarts it elsewhere once the GCS declares the node dead, which takes longer
# than a few quick retries), bounded by MAX_RESTARTS and by the run's step timeout. Exceptions
# raised by the agent's own code are never retried by Ray.
MAX_TASK_RETRIES = -1


def agent_actor_name(role: str, resource: str = "", version: str | None = None) -> str:
    """``analyst@1.0.0`` (the role's version; the Model Gateway's is aigentflow's); agents kept to nodes with a
    custom resource are a separate actor per resource."""
    if version is None:
        from actors.specs import BUILTIN_SPECS

        version = next((s.version for s in BUILTIN_SPECS if s.name == role), __version__)
    return f"{role}@{version}" + (f"[{resource}]" if resource else "")


def run_host_actor_name(node_id: str) -> str:
    return f"run_host@{__version__}:{node_id}"


_handles: dict[tuple[str, str], Any] = {}
"""Handles of the detached actors this process asked for, by (cluster, name): a run host's second run
reuses them (asking Ray again by name loads and exports the class anew, milliseconds an actor)."""


def forget_actor(handle: Any) -> None:
    """Ask Ray again by name next time for the actor of ``handle`` (it was killed, or is dead for good);
    a ``ProjectGit`` stands for its ``GitAgents`` actor."""
    handle = getattr(handle, "handle", handle)
    for key in [key for key, kept in _handles.items() if kept is handle]:
        _handles.pop(key, None)


def make_actor(cls: type, *args: Any, name: str, max_concurrency: int = 1, detached: bool = False,
               scheduling_strategy: Any = None, resources: dict[str, float] | None = None,
               concurrency_groups: dict[str, int] | None = None, **kwargs: Any) -> Any:
    """Create (or, if one of that name is alive, reuse) a named actor of ``cls``."""
    import ray

    key = (ray.get_runtime_context().gcs_address, name)
    if detached and key in _handles:
        return _handles[key]

    options: dict[str, Any] = {
        "name": name,
        "namespace": NAMESPACE,
        "get_if_exists": True,
        "max_restarts": MAX_RESTARTS,
        "max_task_retries": MAX_TASK_RETRIES,
        "max_concurrency": max_concurrency,
        # Agents wait on models, not CPUs: they must not hold a core each on a 2-core laptop.
        "num_cpus": 0,
    }
    if detached:
        options["lifetime"] = "detached"
    if scheduling_strategy is not None:
        options["scheduling_strategy"] = scheduling_strategy
    if resources:
        options["resources"] = resources
    remote = ray.remote(concurrency_groups=concurrency_groups)(cls) if concurrency_groups else ray.remote(cls)
    handle = remote.options(**options).remote(*args, **kwargs)
    if detached:
        _handles[key] = handle
    return handle


@functools.cache
def remote_task(fn: Any) -> Any:
    """``fn`` as a Ray remote function, made once per process: each new one is pickled and exported to
    the GCS on its first call (a few milliseconds each, on every build, test and lint task)."""
    import ray

    return ray.remote(fn)


def this_node() -> Any:
    """A scheduling strategy that keeps an actor or task on the caller's node (hard affinity)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)


def run_host_actor() -> Any:
    """The run host of the caller's node (``actors/run_host.py``): detached, shared by every run started on
    this node (the run's SQLite and trace files live here); each run drives on a thread of the "runs"
    group, while agents' ``check_controls`` calls are answered on the default group's threads."""
    import ray

    from actors.run_host import RUN_THREADS, RunHost

    node = ray.get_runtime_context().get_node_id()
    return make_actor(RunHost, name=run_host_actor_name(node), max_concurrency=32, detached=True,
                      scheduling_strategy=this_node(), concurrency_groups={"runs": RUN_THREADS})


def git_agent_actor(project_root: str, fault_plan: Any = None) -> Any:
    """The project's Git Agent on the caller's node (the repository's): a ``ProjectGit`` handle on the
    node's ``GitAgents`` actor, which serves every project of the node, a few calls at once (threads),
    and is kept across runs (a crash test's own apart: ``fault_plan``, the run's ``aigentflow.faults``
    plan, is installed in its process)."""
    import hashlib

    import ray

    from actors.git_agent import GitAgents, ProjectGit

    node = ray.get_runtime_context().get_node_id()
    name = f"git_agent@{__version__}:{node}"
    if fault_plan:
        name += ":faults-" + hashlib.sha256(fault_plan.describe().encode()).hexdigest()[:12]
    handle = make_actor(GitAgents, fault_plan, name=name, max_concurrency=16, detached=True,
                        scheduling_strategy=this_node())
    return ProjectGit(handle, project_root)


def agent_actor(spec: Any, resource: str = "") -> Any:
    """The shared actor of one version of a role (an ``AgentSpec``: ``analyst@1.0.0``); with ``resource``,
    only on nodes that offer that custom resource."""
    from actors import load_class

    # Several runs may share one agent: let it serve a few calls at once. Its completions go through
    # the Model Gateway of the same resource (the agent itself never imports litellm).
    return make_actor(load_class(spec.implementation), resource,
                      name=agent_actor_name(spec.name, resource, spec.version), max_concurrency=8,
                      detached=True, resources={resource: 0.01} if resource else None)


def model_gateway_actor(resource: str = "") -> Any:
    """The cluster's Model Gateway (``actors/model_gateway.py``), one per agent resource, detached and
    shared by every agent and run; calls wait on providers, so it serves many at once (threads)."""
    from actors.model_gateway import ModelGateway

    return make_actor(ModelGateway, name=agent_actor_name(ModelGateway.role, resource, __version__), max_concurrency=64,
                      detached=True, resources={resource: 0.01} if resource else None)
