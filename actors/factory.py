"""The one factory that turns a plain agent class into a Ray actor.

Names, namespace, restarts, task retries and concurrency are set here and nowhere else, so that the
dashboard's actor list reads as the agent team (``<role>:<run_id>``) and every role survives a
crashed worker the same way.
"""

from __future__ import annotations

from typing import Any

NAMESPACE = "aigentflow"
MAX_RESTARTS = 3
MAX_TASK_RETRIES = 3


def actor_name(role: str, run_id: str) -> str:
    return f"{role}:{run_id}"


def make_actor(cls: type, *args: Any, role: str, run_id: str, max_concurrency: int = 1,
               lifetime: str | None = None, **kwargs: Any) -> Any:
    """Create (or, if it is still alive, reuse) the named actor of ``cls`` for this run."""
    import ray

    options: dict[str, Any] = {
        "name": actor_name(role, run_id),
        "namespace": NAMESPACE,
        "get_if_exists": True,
        "max_restarts": MAX_RESTARTS,
        "max_task_retries": MAX_TASK_RETRIES,
        "max_concurrency": max_concurrency,
        # Agents wait on models, not CPUs: they must not hold a core each on a 2-core laptop.
        "num_cpus": 0,
    }
    if lifetime:
        options["lifetime"] = lifetime
    return ray.remote(cls).options(**options).remote(*args, **kwargs)
