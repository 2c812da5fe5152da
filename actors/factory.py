"""The one factory that turns a plain agent class into a Ray actor.

Names, namespace, restarts, task retries and concurrency are set here and nowhere else. Agent
actors are named by role and version (``analyst@0.1.0``) and detached, so that on a running cluster
they are created once and reused by every run (creating an actor costs about 0.65 s here, plus the
model library's import); each run's Orchestrator is named by its run (``orchestrator:<run_id>``).
The dashboard's actor list so reads as the agent team.
"""

from __future__ import annotations

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


def orchestrator_actor_name(run_id: str) -> str:
    return f"orchestrator:{run_id}"


def make_actor(cls: type, *args: Any, name: str, max_concurrency: int = 1, detached: bool = False,
               scheduling_strategy: Any = None, resources: dict[str, float] | None = None, **kwargs: Any) -> Any:
    """Create (or, if one of that name is alive, reuse) a named actor of ``cls``."""
    import ray

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
    return ray.remote(cls).options(**options).remote(*args, **kwargs)


def this_node() -> Any:
    """A scheduling strategy that keeps an actor or task on the caller's node (hard affinity)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)


def orchestrator_actor(cls: type, *args: Any, run_id: str) -> Any:
    """The run's owner, pinned to the driver's node: the run's SQLite and trace files live there."""
    return make_actor(cls, *args, name=orchestrator_actor_name(run_id), max_concurrency=4,
                      scheduling_strategy=this_node())


def git_agent_actor(project_root: str, run_id: str, fault_plan: Any = None) -> Any:
    """The run's Git Agent, on the caller's node (the repository's); a few calls at once (threads).
    ``fault_plan``: the run's ``aigentflow.faults`` plan, installed in the agent's process."""
    from actors.git_agent import GitAgent

    return make_actor(GitAgent, project_root, fault_plan, name=f"git_agent:{run_id}", max_concurrency=8,
                      scheduling_strategy=this_node())


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
