"""The configured providers and models (``providers.*``, ``models.*``) as litellm calls them, and their
prices, decided without importing litellm: prices come from litellm's own cost map file, read as JSON
(the map litellm loads with ``LITELLM_LOCAL_MODEL_COST_MAP=True``)."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aigentflow.config.models import LITELLM_PREFIX, did_you_mean
from aigentflow.exceptions import UsageError
from aigentflow.models.spec import Deployment

COST_MAP_FILE = "model_prices_and_context_window_backup.json"


def per_token(per_mtok: float | None) -> float | None:
    return None if per_mtok is None else per_mtok / 1e6


def is_configured(settings: Any, name: str) -> bool:
    return settings is not None and name in (getattr(settings, "models", None) or {})


def deployment(settings: Any, name: str) -> Deployment:
    """The configured model ``name`` as litellm calls it."""
    entry = settings.models[name]
    provider = settings.providers[entry.provider]
    return Deployment(name=name, provider=entry.provider,
                      litellm_model=f"{LITELLM_PREFIX[provider.type]}/{entry.model}",
                      api_base=provider.api_base, key_env=provider.key_variable,
                      input_cost_per_token=per_token(entry.input_cost_per_mtok),
                      output_cost_per_token=per_token(entry.output_cost_per_mtok))


def chain(settings: Any, name: str) -> tuple[Deployment, ...]:
    """``name`` and then its fallbacks, theirs after them (depth first, each once)."""
    order: list[str] = []

    def visit(current: str) -> None:
        if current in order:
            return
        order.append(current)
        for fallback in settings.models[current].fallbacks:
            visit(fallback)

    visit(name)
    return tuple(deployment(settings, n) for n in order)


def check_keys(settings: Any, names: Iterable[str], environ: Mapping[str, str] = os.environ) -> None:
    """UsageError naming every configured model (or fallback) whose key variable is unset; never a value."""
    problems: list[str] = []
    for name in dict.fromkeys(names):
        if not is_configured(settings, name):
            continue
        for dep in chain(settings, name):
            if dep.key_env and not environ.get(dep.key_env, "").strip():
                state = "empty" if dep.key_env in environ else "not set"
                role = "" if dep.name == name else f", a fallback of {name}"
                problem = (f"model {dep.name} (provider {dep.provider}{role}) cannot be called: its key variable "
                           f"{dep.key_env} is {state}; `export {dep.key_env}=...`")
                if problem not in problems:
                    problems.append(problem)
    if problems:
        raise UsageError("; ".join(problems) + ". Or run offline with `--model replay/<cassette>`.")


def check_name(settings: Any, name: str) -> None:
    """UsageError for a name that is neither configured, a replay model, nor one litellm routes (with the
    closest configured name)."""
    if is_configured(settings, name) or name.startswith("replay/"):
        return
    from aigentflow.models.preflight import provider_of

    try:
        provider_of(name)
    except UsageError as exc:
        raise unknown_model(settings, name, str(exc)) from None


def unknown_model(settings: Any, name: str, reason: str) -> UsageError:
    """An unknown model name: litellm's reason, and the closest configured name."""
    models = sorted(getattr(settings, "models", None) or {})
    hint = did_you_mean(name, models)
    known = f" Configured models: {', '.join(models)}." if models else ""
    return UsageError(f"{reason}{hint}{known}" if not hint else f"unknown model {name!r}{hint}.{known} ({reason})")


# -- prices -------------------------------------------------------------------------------------------


@functools.cache
def cost_map() -> dict[str, Any]:
    """litellm's cost map, from the installed litellm's file (no import of litellm: ~80 ms of JSON)."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / COST_MAP_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def prices(dep: Deployment) -> tuple[float, float, str]:
    """(USD per input token, per output token, where from: "config", "litellm" or "unpriced")."""
    if dep.input_cost_per_token is not None or dep.output_cost_per_token is not None:
        return dep.input_cost_per_token or 0.0, dep.output_cost_per_token or 0.0, "config"
    table = cost_map()
    bare = dep.litellm_model.split("/", 1)[1]
    for key in (dep.litellm_model, bare):
        entry = table.get(key)
        if isinstance(entry, dict) and "input_cost_per_token" in entry:
            return float(entry["input_cost_per_token"]), float(entry.get("output_cost_per_token") or 0), "litellm"
    return 0.0, 0.0, "unpriced"


def cost_per_mtok(dep: Deployment) -> float:
    """Input plus output price per million tokens (what ``max_cost_per_mtok`` and ``prefer = cost`` compare)."""
    prompt, completion, _ = prices(dep)
    return (prompt + completion) * 1e6


def describe(settings: Any, environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Providers and models as `aigentflow models list` shows them: whether each key is set, never its value."""
    providers = [{"name": name, "type": p.type, "api_base": p.api_base or "(the provider's own)",
                  "key_env": p.key_variable, "key_set": (not p.key_variable) or bool(environ.get(p.key_variable,
                                                                                                 "").strip())}
                 for name, p in sorted(settings.providers.items())]
    models = []
    for name, entry in sorted(settings.models.items()):
        dep = deployment(settings, name)
        prompt, completion, source = prices(dep)
        key_set = (not dep.key_env) or bool(environ.get(dep.key_env, "").strip())
        models.append({"name": name, "provider": entry.provider, "litellm_model": dep.litellm_model,
                       "tags": list(entry.tags), "latency_ms": entry.latency_ms, "fallbacks": list(entry.fallbacks),
                       "input_per_1k_usd": round(prompt * 1000, 9), "output_per_1k_usd": round(completion * 1000, 9),
                       "price_source": source, "key_env": dep.key_env, "key_set": key_set})
    return {"providers": providers, "models": models,
            "rules": [r.model_dump() for r in settings.routing.rules]}
