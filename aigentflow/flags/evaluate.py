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


class Evaluator:
    """Flags by key, evaluated against a context's attributes (tenant, project, role, user)."""

    def __init__(self, definitions: Mapping[str, FlagDefinition]) -> None:
        self.definitions = dict(sorted(definitions.items()))
        self._static = {key: Resolution(key, d.default, STATIC, None, d.type, d.source)
                        for key, d in self.definitions.items() if not d.dynamic}
        self._splits = {key: _cumulative(d) for key, d in self.definitions.items() if d.split}

    def keys(self) -> list[str]:
        return list(self.definitions)

    def evaluate(self, key: str, attributes: Mapping[str, Any], targeting_key: str | None = None,
                 expected: str | None = None) -> Resolution:
        """Flag ``key``'s value for this context; ``expected`` (a type name) checks the caller's type.
        Errors (unknown flag, wrong type) come back as a Resolution with reason ERROR, never raised."""
        static = self._static.get(key)
        if static is not None and (expected is None or expected == static.type):
            return static
        definition = self.definitions.get(key)
        if definition is None:
            return Resolution(key, None, ERROR, error_code=FLAG_NOT_FOUND,
                              error_message=str(unknown_flag(key, list(self.definitions))))
        if expected is not None and expected != definition.type and \
                not (expected == "float" and definition.type == "integer"):
            return Resolution(key, None, ERROR, type=definition.type, source=definition.source,
                              error_code=TYPE_MISMATCH,
                              error_message=f"flag {key!r} is {article(definition.type)} {definition.type} flag, "
                                            f"asked for as {expected}: "
                                            f"use get_{_getter(definition.type)}_value")
        if static is not None:
            return Resolution(key, float(static.value), STATIC, None, static.type, static.source)
        return self._dynamic(definition, attributes, targeting_key, expected)

    def _dynamic(self, definition: FlagDefinition, attributes: Mapping[str, Any], targeting_key: str | None,
                 expected: str | None) -> Resolution:
        key, kind = definition.key, definition.type
        widen = float if expected == "float" and kind == "integer" else _same
        for number, rule in enumerate(definition.rules, start=1):
            if rule.matches(attributes):
                return Resolution(key, widen(rule.value), TARGETING_MATCH, rule.variant or f"rule-{number}", kind,
                                  definition.rules_source)
        if definition.split:
            fraction = subject_fraction(key, targeting_key_of(attributes, targeting_key))
            variants = definition.variants
            for name, upper in self._splits[key]:
                if fraction < upper:
                    value = variants[name] if name in variants else _parsed(key, kind, name)
                    return Resolution(key, widen(value), SPLIT, name, kind, definition.rules_source)
        rollout = definition.rollout
        if rollout is not None and rollout.percent > 0 and \
                subject_fraction(key, targeting_key_of(attributes, targeting_key)) * 100 < rollout.percent:
            return Resolution(key, widen(rollout.value), SPLIT, "rollout", kind, definition.rules_source)
        return Resolution(key, widen(definition.default), DEFAULT, None, kind, definition.source)

    def evaluate_all(self, attributes: Mapping[str, Any], targeting_key: str | None = None) -> list[Resolution]:
        return [self.evaluate(key, attributes, targeting_key) for key in self.definitions]


def context_attributes(tenant: str | None = None, project: str | None = None, role: str | None = None,
                       user: str | None = None) -> dict[str, str]:
    """The attributes rules match on, those given only."""
    given = {"tenant": tenant, "project": project, "role": role, "user": user}
    return {name: value for name in CONTEXT_ATTRIBUTES if (value := given[name])}


def _same(value: FlagValue) -> FlagValue:
    return value


def _getter(kind: str) -> str:
    return {"boolean": "boolean", "integer": "integer", "float": "float", "string": "string"}[kind]


def _parsed(key: str, kind: str, name: str) -> FlagValue:
    from aigentflow.flags.definitions import parse_text

    return parse_text(key, kind, name)


def _cumulative(definition: FlagDefinition) -> list[tuple[str, float]]:
    """The split's variants with the upper end of their share of [0, 1), in a fixed order (by name)."""
    total = sum(definition.split.values())
    bounds, running = [], 0
    for name in sorted(definition.split):
        running += definition.split[name]
        bounds.append((name, running / total))
    bounds[-1] = (bounds[-1][0], 1.0)
    return bounds
