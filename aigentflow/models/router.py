"""A configured model and its fallbacks as one ``litellm.Router`` (in the process that calls models: the
Model Gateway, or an agent used without Ray): retries of a deployment, fallbacks on errors and rate
limits (429, 5xx, timeouts), cooldowns of a deployment that keeps failing.

Each deployment is its own model group named as configured (``models.<name>``), its ``model_info.id``
that name too, so the response says which one answered (``_hidden_params["model_id"]``). Keys are read
from the variables the configuration names, here and only here, and never leave this process.
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

import litellm

from aigentflow.models.spec import Deployment, ModelSpec

_routers: dict[tuple[Any, ...], Any] = {}
_lock = threading.Lock()

NO_KEY = "no-key-needed"
"""What an OpenAI-compatible server without keys is sent (the openai client refuses an empty key)."""


def _params(dep: Deployment) -> dict[str, Any]:
    params: dict[str, Any] = {"model": dep.litellm_model, "api_key": os.environ.get(dep.key_env, "") if dep.key_env
                              else NO_KEY}
    if dep.api_base:
        params["api_base"] = dep.api_base
    if dep.input_cost_per_token is not None or dep.output_cost_per_token is not None:
        params["input_cost_per_token"] = dep.input_cost_per_token or 0.0
        params["output_cost_per_token"] = dep.output_cost_per_token or 0.0
    return params


def router_for(spec: ModelSpec) -> Any:
    """The Router of ``spec``'s deployments (one per process and configuration, kept: its cooldowns live
    in it); a key changed in the environment makes a new one."""
    keys = hashlib.sha256("\0".join(os.environ.get(d.key_env, "") for d in spec.deployments).encode()).hexdigest()
    cache_key = (spec.deployments, spec.router_retries, spec.cooldown_s, keys)
    with _lock:
        router = _routers.get(cache_key)
        if router is None:
            primary, *others = spec.deployments
            router = litellm.Router(
                model_list=[{"model_name": d.name, "litellm_params": _params(d), "model_info": {"id": d.name}}
                            for d in spec.deployments],
                fallbacks=[{primary.name: [d.name for d in others]}] if others else [],
                num_retries=spec.router_retries, retry_after=0, cooldown_time=spec.cooldown_s,
                timeout=spec.timeout_s)
            _routers[cache_key] = router
        return router


def complete(spec: ModelSpec, messages: list[dict[str, Any]], metadata: dict[str, Any]) -> tuple[Any, Deployment]:
    """The response of the first deployment that answered, and that deployment."""
    response = router_for(spec).completion(model=spec.deployments[0].name, messages=messages,
                                           temperature=spec.temperature, timeout=spec.timeout_s, metadata=metadata)
    hidden = getattr(response, "_hidden_params", None) or {}
    answered = str(hidden.get("model_id") or "")
    by_name = {d.name: d for d in spec.deployments}
    if answered not in by_name:  # by the model litellm reports instead
        reported = str(hidden.get("litellm_model_name") or "")
        answered = next((d.name for d in spec.deployments if d.litellm_model == reported), spec.deployments[0].name)
    return response, by_name[answered]
