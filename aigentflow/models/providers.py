"""Which provider serves a model name, and which environment variables it needs, without litellm.

``import litellm`` takes seconds; a run that cannot reach its model must be refused in well under
one. So the answers litellm would give are recorded, for the pinned litellm version, in
``providers.json`` next to this module, and read here with the standard library only:

- ``prefixes``: the provider that ``<prefix>/<model>`` goes to (``get_llm_provider``);
- ``models``: the names litellm routes otherwise: bare names (``gpt-4o-mini``) and the few
  ``prefix/name`` that go elsewhere (``azure/command-r`` is served by openai);
- ``routing_rules``: litellm's fallback regexes for bare names it has no entry for;
- ``providers``: the key requirements of each provider as ``validate_environment`` decides them,
  a list of alternatives, each a list of variables that must all be set (``[[]]``: none needed).

Regenerate after changing the pinned litellm: ``python -m aigentflow.models.providers --write``
(``tests/test_preflight.py`` checks the table against the installed litellm).
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("providers.json")
COMMAND = "python -m aigentflow.models.providers --write"
PROBE = "probe"

DEFAULTS = {
    "ollama": {"OLLAMA_API_BASE": "http://localhost:11434"},
    "ollama_chat": {"OLLAMA_API_BASE": "http://localhost:11434"},
}
"""Requirements litellm reports that a default satisfies: ollama's server is local unless told otherwise."""
INTERACTIVE = {"github_copilot", "chatgpt"}
"""Providers whose credentials come from an OAuth device flow that ``get_llm_provider`` starts itself:
never probed (that would start the flow), and not checkable ahead of a call."""


class Undecided(Exception):
    """The table cannot answer for this name (or this litellm): ask litellm itself."""


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` holds exactly ``values`` inside the block, and what it held before after it."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


# -- reading the table -----------------------------------------------------------------------------


@functools.cache
def table() -> dict[str, Any]:
    """The shipped table, if it was generated for the installed litellm; else ``Undecided``."""
    try:
        data = json.loads(TABLE.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise Undecided(f"{TABLE} is unreadable ({exc}); regenerate it with `{COMMAND}`") from None
    try:
        installed = metadata.version("litellm")
    except metadata.PackageNotFoundError:
        installed = ""
    if data.get("litellm_version") != installed:
        raise Undecided(f"{TABLE.name} is for litellm {data.get('litellm_version')}, litellm {installed} is installed")
    return data


def resolve(name: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """The provider litellm routes ``name`` to, or None if it routes it nowhere (``Undecided`` when
    the table cannot tell)."""
    data = table()
    if environ.get("USE_LITELLM_PROXY", "").strip().lower() in ("1", "true", "yes", "on"):
        raise Undecided("USE_LITELLM_PROXY sends every model through a litellm proxy")
    if name in data["models"]:
        return data["models"][name]
    prefix, slash, _ = name.partition("/")
    if slash and prefix in data["prefixes"]:
        provider = data["prefixes"][prefix]
        if provider is None:
            raise Undecided(f"litellm routes {prefix}/... only with more settings than a name")
        return provider
    return _by_rules(name, data["routing_rules"])


def _by_rules(name: str, routing_rules: list[list[str]]) -> str | None:
    """What ``get_llm_provider`` does with a name it has no entry for (its code, then its regexes)."""
    if "ft:gpt-3.5-turbo" in name or "ft:gpt-4" in name or name.startswith("gpt-image") or name == "*":
        return "openai"
    parts = name.split(":")
    if ":" in name and len(name) > 64 and len(parts[1]) == 64:
        return "replicate"
    if name.startswith("amazon_nova"):
        return "amazon_nova"
    for pattern, provider in routing_rules:
        if re.search(pattern, name, re.IGNORECASE):
            return provider
    return None


def known(provider: str) -> bool:
    return provider in table()["providers"] or provider in INTERACTIVE


def requirements(provider: str) -> list[list[str]]:
    """Alternatives of variables that must all be set (``[[]]``: nothing is needed)."""
    return [list(alt) for alt in table()["providers"].get(provider, [[]])]


def is_set(variable: str, environ: Mapping[str, str], provider: str = "") -> bool:
    """Set to something (an empty value is no key), or defaulted for this provider."""
    return bool(environ.get(variable, "").strip()) or variable in DEFAULTS.get(provider, {})


def missing(provider: str, environ: Mapping[str, str], alternatives: list[list[str]] | None = None) -> list[list[str]]:
    """``[]`` if some alternative is met; else each alternative's unset variables."""
    options = requirements(provider) if alternatives is None else alternatives
    unset = [[v for v in alt if not is_set(v, environ, provider)] for alt in options]
    return [] if any(not alt for alt in unset) else unset


# -- generating it from litellm --------------------------------------------------------------------


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def _route(litellm: Any, name: str) -> str | None:
    try:
        return str(litellm.get_llm_provider(model=name)[1])
    except Exception:  # noqa: BLE001 - litellm's BadRequestError (or a provider's own): routed nowhere
        return None


def _passes(litellm: Any, model: str, variables: list[str] | set[str]) -> bool:
    with environment(dict.fromkeys(variables, "x")):
        return bool(litellm.validate_environment(model)["keys_in_environment"])


def probe_requirements(litellm: Any, model: str, candidates: list[str]) -> list[list[str]]:
    """The key alternatives ``validate_environment(model)`` accepts, from a cleared environment: what
    it reports missing, every candidate that passes alone, and every single substitution into the
    former (``K and (A or B)``); supersets of another alternative are dropped."""
    with environment({}):
        first = list(litellm.validate_environment(model)["missing_keys"])
    if not first:
        return [[]]
    found = [first] if _passes(litellm, model, first) else []
    pool = sorted(set(candidates) | set(first))
    found += [[c] for c in pool if _passes(litellm, model, [c])]
    for dropped in first:
        kept = [v for v in first if v != dropped]
        found += [[*kept, c] for c in pool if c not in first and _passes(litellm, model, [*kept, c])]
    unique: dict[frozenset[str], list[str]] = {}  # litellm's own answer first, in its order
    for alt in found:
        if not any(set(other) < set(alt) for other in found):
            unique.setdefault(frozenset(alt), alt if alt is first else sorted(alt))
    return list(unique.values()) or [first]


def generate() -> dict[str, Any]:
    """The table for the installed litellm (see the module docstring)."""
    import inspect

    litellm = _litellm()
    from litellm.llms.openai_like.json_loader import JSONProviderRegistry

    source = inspect.getsource(litellm.utils.validate_environment)
    candidates = sorted(set(re.findall(r"\"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)\"", source)))
    provider_names = [getattr(p, "value", p) for p in litellm.provider_list]
    prefixes_all = sorted({str(p) for p in provider_names} | set(JSONProviderRegistry.list_providers()))
    with environment({}):
        prefixes = {p: (p if p in INTERACTIVE else _route(litellm, f"{p}/{PROBE}")) for p in prefixes_all}
        names = set(litellm.model_cost)
        for attr in dir(litellm):
            value = getattr(litellm, attr)
            if attr.endswith("_models") and isinstance(value, (list, set, tuple, frozenset)):
                names |= {n for n in value if isinstance(n, str)}
        bare = sorted(n for n in names if "/" not in n)
        models: dict[str, str | None] = {}
        for name in sorted(names):
            prefix, slash, _ = name.partition("/")
            if prefix in INTERACTIVE:
                continue
            routed = _route(litellm, name)
            expected = prefixes.get(prefix) if slash and prefix in prefixes else _by_rules(name, [])
            if routed is not None and routed != expected:
                models[name] = routed
        for prefix, provider in prefixes.items():  # azure/command-r, cohere/command-r, anthropic/claude-2 ...
            if provider is None or prefix in INTERACTIVE:
                continue
            for name in bare:
                routed = _route(litellm, f"{prefix}/{name}")
                if routed is not None and routed != provider:
                    models[f"{prefix}/{name}"] = routed
    from litellm.litellm_core_utils.fallback_generalizations import _registry

    routing_rules = [[rule.pattern.pattern, rule.provider] for rule in _registry.routing_rules]
    samples: dict[str, str] = {}
    for prefix, provider in prefixes.items():
        if provider is not None:
            samples.setdefault(provider, f"{prefix}/{PROBE}")
    for name, provider in sorted(models.items()):
        if provider is not None:
            samples.setdefault(provider, name)
    providers = {provider: [[]] if provider in INTERACTIVE else probe_requirements(litellm, sample, candidates)
                 for provider, sample in sorted(samples.items())}
    return {
        "litellm_version": metadata.version("litellm"),
        "command": COMMAND,
        "providers": providers,
        "samples": dict(sorted(samples.items())),
        "prefixes": prefixes,
        "models": dict(sorted(models.items())),
        "routing_rules": routing_rules,
    }


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        print(f"usage: {COMMAND}   (writes {TABLE})", file=sys.stderr)
        return 2
    data = generate()
    TABLE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print(f"wrote {TABLE}: {len(data['providers'])} providers, {len(data['models'])} model names, "
          f"litellm {data['litellm_version']} ({TABLE.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
