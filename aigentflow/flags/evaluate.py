"""Evaluating flags for a context: targeting rules, then an A/B split or a percentage rollout, then the
static value. Pure Python and allocation-light: the OpenFeature provider (``provider.py``) and the
runs call it; a static flag's answer is prepared once.

Stickiness: a subject's place in a split or rollout is a consistent hash (BLAKE2b) of the flag key and
the targeting key, read as a fraction in [0, 1). The same subject always lands in the same place, so it
always gets the same variant; a rollout takes the subjects whose fraction is below ``percent / 100``, so
raising the percentage only adds subjects. The targeting key is the context's own, else its ``user``,
else ``tenant/project``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aigentflow.flags.definitions import CONTEXT_ATTRIBUTES, FlagDefinition, FlagValue, article, unknown_flag

STATIC = "STATIC"
DEFAULT = "DEFAULT"
TARGETING_MATCH = "TARGETING_MATCH"
SPLIT = "SPLIT"
ERROR = "ERROR"
"""OpenFeature's reason names (``openfeature.flag_evaluation.Reason`` values), without importing it."""
FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
TYPE_MISMATCH = "TYPE_MISMATCH"
"""OpenFeature's error codes (``openfeature.exception.ErrorCode`` values)."""

_SCALE = float(2**64)


@dataclass(frozen=True, slots=True)
class Resolution:
    """One evaluation: the value, the variant that gave it, OpenFeature's reason, and any error."""

    key: str
    value: Any
    reason: str
    variant: str | None = None
    type: str | None = None
    source: str = ""
    error_code: str | None = None
    error_message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "type": self.type, "value": self.value, "variant": self.variant,
                "reason": self.reason, "source": self.source, "error_code": self.error_code,
                "error_message": self.error_message}


def subject_fraction(key: str, targeting_key: str) -> float:
    """Where subject ``targeting_key`` falls in flag ``key``'s splits and rollouts: in [0, 1), always the same."""
    digest = hashlib.blake2b(f"{key}\x00{targeting_key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def targeting_key_of(attributes: Mapping[str, Any], targeting_key: str | None = None) -> str:
    """The subject a split or rollout is sticky to (see the module's doc)."""
    if targeting_key:
        return targeting_key
    user = attributes.get("user")
    if user:
        return str(user)
    return f"{attributes.get('tenant') or ''}/{attributes.get('project') or ''}"


class _Compiled:
    """A dynamic flag's answers, made once: one per rule, per split variant, the rollout and the default."""

    __slots__ = ("default", "percent", "rollout", "rules", "split")

    def __init__(self, definition: FlagDefinition) -> None:
        key, kind, source = definition.key, definition.type, definition.rules_source
        self.rules = [(tuple(rule.when.items()),
                       Resolution(key, rule.value, TARGETING_MATCH, rule.variant or f"rule-{number}", kind, source))
                      for number, rule in enumerate(definition.rules, start=1)]
        self.split = [(upper, Resolution(key, _variant(definition, name), SPLIT, name, kind, source))
                      for name, upper in _cumulative(definition)] if definition.split else []
        rollout = definition.rollout
        self.percent = rollout.percent if rollout else 0.0
        self.rollout = Resolution(key, rollout.value, SPLIT, "rollout", kind, source) if rollout else None
        self.default = Resolution(key, definition.default, DEFAULT, None, kind, definition.source)


class Evaluator:
    """Flags by key, evaluated against a context's attributes (tenant, project, role, user)."""

    def __init__(self, definitions: Mapping[str, FlagDefinition]) -> None:
        self.definitions = dict(sorted(definitions.items()))
        self._static = {key: Resolution(key, d.default, STATIC, None, d.type, d.source)
                        for key, d in self.definitions.items() if not d.dynamic}
        self._dynamic = {key: _Compiled(d) for key, d in self.definitions.items() if d.dynamic}

    def keys(self) -> list[str]:
        return list(self.definitions)

    def evaluate(self, key: str, attributes: Mapping[str, Any], targeting_key: str | None = None,
                 expected: str | None = None) -> Resolution:
        """Flag ``key``'s value for this context; ``expected`` (a type name) checks the caller's type.
        Errors (unknown flag, wrong type) come back as a Resolution with reason ERROR, never raised.
        Every answer without an error is one of the flag's prepared ``Resolution`` objects."""
        static = self._static.get(key)
        if static is not None and (expected is None or expected == static.type):
            return static
        definition = self.definitions.get(key)
        if definition is None:
            return Resolution(key, None, ERROR, error_code=FLAG_NOT_FOUND,
                              error_message=str(unknown_flag(key, list(self.definitions))))
        if expected is not None and expected != definition.type:
            if expected == "float" and definition.type == "integer":  # a whole number is a number too
                found = self.evaluate(key, attributes, targeting_key)
                return Resolution(key, float(found.value), found.reason, found.variant, found.type, found.source)
            return Resolution(key, None, ERROR, type=definition.type, source=definition.source,
                              error_code=TYPE_MISMATCH,
                              error_message=f"flag {key!r} is {article(definition.type)} {definition.type} flag, "
                                            f"asked for as {expected}: use get_{definition.type}_value")
        compiled = self._dynamic[key]
        for conditions, result in compiled.rules:
            for name, allowed in conditions:
                if attributes.get(name) not in allowed:
                    break
            else:
                return result
        if compiled.split:
            fraction = subject_fraction(key, targeting_key_of(attributes, targeting_key))
            for upper, result in compiled.split:
                if fraction < upper:
                    return result
        if compiled.rollout is not None and compiled.percent > 0 and \
                subject_fraction(key, targeting_key_of(attributes, targeting_key)) * 100 < compiled.percent:
            return compiled.rollout
        return compiled.default

    def evaluate_all(self, attributes: Mapping[str, Any], targeting_key: str | None = None) -> list[Resolution]:
        return [self.evaluate(key, attributes, targeting_key) for key in self.definitions]


def context_attributes(tenant: str | None = None, project: str | None = None, role: str | None = None,
                       user: str | None = None) -> dict[str, str]:
    """The attributes rules match on, those given only."""
    given = {"tenant": tenant, "project": project, "role": role, "user": user}
    return {name: value for name in CONTEXT_ATTRIBUTES if (value := given[name])}


def _variant(definition: FlagDefinition, name: str) -> FlagValue:
    if name in definition.variants:
        return definition.variants[name]
    from aigentflow.flags.definitions import parse_text

    return parse_text(definition.key, definition.type, name)


def _cumulative(definition: FlagDefinition) -> list[tuple[str, float]]:
    """The split's variants with the upper end of their share of [0, 1), in a fixed order (by name)."""
    total = sum(definition.split.values())
    bounds, running = [], 0
    for name in sorted(definition.split):
        running += definition.split[name]
        bounds.append((name, running / total))
    bounds[-1] = (bounds[-1][0], 1.0)
    return bounds
