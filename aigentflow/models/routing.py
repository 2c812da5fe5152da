"""Which model a call goes to: ``routing.rules`` per role and per task (the step), by name or chosen
among the configured models by capability tags, a price ceiling and a preference (cost, latency,
order). Plain data in, a name out: no litellm (prices come from ``catalog``'s reading of its cost map).

The first rule that matches decides; no rule: the role version's own model, else the run's. Fallbacks
on errors and rate limits are the chosen model's ``fallbacks`` (``litellm.Router``, in the gateway).
"""

from __future__ import annotations

import re
from typing import Any

from aigentflow.exceptions import UsageError
from aigentflow.models import catalog


def task_type(step: str) -> str:
    """``test.2`` (a second round of test), ``build/T1``, ``review/T1/1`` (a build task's steps): their type."""
    return re.split(r"[./]", step, maxsplit=1)[0]


def matches(rule: Any, role: str, task: str) -> bool:
    return rule.role in ("*", role) and rule.task in ("*", task, task_type(task))


def choose(settings: Any, rule: Any) -> str | None:
    """The configured model a rule without ``model`` picks, or None if none qualifies."""
    qualified = []
    for order, (name, entry) in enumerate(settings.models.items()):
        if not set(rule.require) <= set(entry.tags):
            continue
        price = catalog.cost_per_mtok(catalog.deployment(settings, name))
        if rule.max_cost_per_mtok is not None and price > rule.max_cost_per_mtok:
            continue
        latency = entry.latency_ms if entry.latency_ms is not None else float("inf")
        key = {"cost": (price, latency, order), "latency": (latency, price, order), "order": (order,)}[rule.prefer]
        qualified.append((key, name))
    return min(qualified)[1] if qualified else None


def route(settings: Any, role: str, task: str) -> tuple[str, str] | None:
    """(model, which rule chose it) for ``role`` at ``task``; None when no rule matches."""
    for number, rule in enumerate(getattr(settings, "routing", None).rules if settings is not None else []):
        if not matches(rule, role, task):
            continue
        picked = rule.model or choose(settings, rule)
        if picked is None:
            raise UsageError(no_model(rule, number))
        return picked, f"routing.rules[{number}]"
    return None


def no_model(rule: Any, number: int) -> str:
    ceiling = f" at most ${rule.max_cost_per_mtok}/Mtok" if rule.max_cost_per_mtok is not None else ""
    return (f"routing.rules[{number}] (role {rule.role}, task {rule.task}) finds no configured model with tags "
            f"{sorted(rule.require)}{ceiling}; add tags to a model under models, or relax the rule")


def targets(settings: Any) -> list[str]:
    """Every model some rule can send calls to (checked at run start: keys set, names known)."""
    found = []
    for number, rule in enumerate(settings.routing.rules):
        picked = rule.model or choose(settings, rule)
        if picked is None:
            raise UsageError(no_model(rule, number))
        found.append(picked)
    return list(dict.fromkeys(found))
