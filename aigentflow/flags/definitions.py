"""Flag definitions: the preset flags plus those of ``flags.toml`` files, parsed and checked.

A definition is a flag's type, its static value, and optionally targeting rules, an A/B split or a
percentage rollout. Everything a file gets wrong is a ConfigError naming the file, the flag and what fits.
Pure Python (tomllib, no pydantic, no OpenFeature): the config loader reads the files' static values.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigentflow.config import flags as presets
from aigentflow.exceptions import ConfigError

FlagValue = bool | int | float | str
TYPES: dict[str, type] = {"boolean": bool, "integer": int, "float": float, "string": str}
"""A flag's type name (as a file and ``--type`` spell it) -> the Python type of its values."""
CONTEXT_ATTRIBUTES = ("tenant", "project", "role", "user")
"""What a rule may match on: the evaluation context's attributes."""
FILE_NAME = "flags.toml"
_FLAG_FIELDS = {"type", "default", "description", "rules", "split", "variants", "rollout"}


@dataclass(frozen=True)
class Rule:
    """Targeting: when every attribute of ``when`` is one of its values, the flag is ``value``."""

    when: dict[str, tuple[str, ...]]
    value: FlagValue
    variant: str | None = None

    def matches(self, attributes: Mapping[str, Any]) -> bool:
        return all(attributes.get(name) in allowed for name, allowed in self.when.items())

    def to_toml(self) -> dict[str, Any]:
        when = {name: list(values) if len(values) > 1 else values[0] for name, values in self.when.items()}
        return {"when": when, "variant": self.variant} if self.variant else {"when": when, "value": self.value}


@dataclass(frozen=True)
class Rollout:
    """``percent`` of the subjects (by a consistent hash of flag key and targeting key) get ``value``."""

    percent: float
    value: FlagValue


@dataclass(frozen=True)
class FlagDefinition:
    """One flag: its type, static value, and where that value came from."""

    key: str
    type: str
    default: FlagValue
    source: str
    description: str = ""
    rules: tuple[Rule, ...] = ()
    variants: dict[str, FlagValue] = field(default_factory=dict)
    split: dict[str, int] = field(default_factory=dict)
    rollout: Rollout | None = None
    rules_source: str = ""
    """The file its rules, split or rollout come from (what a TARGETING_MATCH or SPLIT is due to)."""

    @property
    def dynamic(self) -> bool:
        """Whether the context can change its value (else its reason is STATIC)."""
        return bool(self.rules or self.split or self.rollout)


def type_name(value: object) -> str:
    """The flag type a Python value belongs to (bool before int: True is an int to Python)."""
    for name, python_type in TYPES.items():
        if type(value) is python_type:
            return name
    return type(value).__name__


def preset_type(key: str) -> str:
    return "integer" if presets.flag_type(key) is int else "boolean"


def check_value(key: str, kind: str, value: object, where: str) -> FlagValue:
    """``value`` if it fits a ``kind`` flag (an integer also fits a float flag); else ConfigError."""
    expected = TYPES[kind]
    if kind == "float" and type(value) is int:
        value = float(value)
    if type(value) is not expected or (kind == "float" and not math.isfinite(value)):  # type: ignore[arg-type]
        raise ConfigError(f"flag {key!r}{where}: {value!r} is not {_words(kind)} "
                          f"(it is {article(kind)} {kind} flag)")
    if key in presets.FLAG_NAMES:
        try:
            presets.check_flag_value(key, value)
        except ConfigError as exc:
            raise ConfigError(f"{exc}{where}") from None
    return value  # type: ignore[return-value]


def parse_text(key: str, kind: str, text: str) -> FlagValue:
    """A value typed on the command line, converted to a ``kind`` flag's type; ConfigError if it cannot be."""
    stripped = text.strip()
    try:
        if kind == "boolean":
            lowered = stripped.lower()
            if lowered not in ("true", "false"):
                raise ValueError
            value: FlagValue = lowered == "true"
        elif kind == "integer":
            value = int(stripped)
        elif kind == "float":
            value = float(stripped)
        else:
            value = text
    except ValueError:
        raise ConfigError(f"flag {key!r} is {article(kind)} {kind} flag: {text!r} is not {_words(kind)}") from None
    return check_value(key, kind, value, "")


def article(kind: str) -> str:
    return "an" if kind[0] in "aeiou" else "a"


def _words(kind: str) -> str:
    return {"boolean": "true or false", "integer": "a whole number", "float": "a number",
            "string": "text"}[kind]


def preset_definitions(preset: str, overrides: Mapping[str, object], sources: Mapping[str, str]) -> \
        dict[str, FlagDefinition]:
    """Every preset flag as a static definition: the preset's value, or the configuration's override."""
    values = presets.resolve_flags(preset, overrides)
    return {key: FlagDefinition(key, preset_type(key), value, sources.get(key, f"preset {preset}"))
            for key, value in values.items()}


def read_file(path: Path) -> dict[str, Any]:
    """The ``[flags]`` tables of a flags file (none if it does not exist)."""
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}; fix or remove the file") from None
    extra = sorted(set(data) - {"flags"})
    if extra:
        raise ConfigError(f"{path}: unknown table(s) {', '.join(extra)}; a flags file holds only [flags.\"KEY\"] "
                          "tables")
    tables = data.get("flags", {})
    for key, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: flags.{key} must be a table ([flags.\"{key}\"]), not {table!r}")
    return tables


def parse_definition(key: str, table: Mapping[str, Any], base: FlagDefinition | None, source: str) -> \
        FlagDefinition:
    """One ``[flags."KEY"]`` table on top of the preset's definition ``base`` (None for a flag of its own)."""
    where = f" in {source}"
    unknown = sorted(set(table) - _FLAG_FIELDS)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(_FLAG_FIELDS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"flag {key!r}{where}: unknown field {unknown[0]!r}{hint}; fields: "
                          f"{', '.join(sorted(_FLAG_FIELDS))}")
    kind = table.get("type", base.type if base else None)
    if kind is None:
        raise ConfigError(f"flag {key!r}{where} is not a preset flag, so it needs a type: "
                          f"type = one of {', '.join(TYPES)}")
    if kind not in TYPES:
        raise ConfigError(f"flag {key!r}{where}: type {kind!r} is not one of {', '.join(TYPES)}")
    if base is not None and kind != base.type:
        raise ConfigError(f"flag {key!r}{where}: the preset flag is {base.type}, not {kind}")
    if "default" not in table and base is None:
        raise ConfigError(f"flag {key!r}{where} needs a default (the value when no rule, split or rollout applies)")
    default = check_value(key, kind, table["default"], where) if "default" in table else base.default  # type: ignore[union-attr]
    variants = _variants(key, kind, table.get("variants", {}), where)
    split = _split(key, kind, table.get("split", {}), variants, where)
    rules = tuple(_rule(key, kind, number, raw, variants, where)
                  for number, raw in enumerate(_list(key, table.get("rules", []), "rules", where), start=1))
    rollout = _rollout(key, kind, table["rollout"], where) if "rollout" in table else None
    if split and rollout:
        raise ConfigError(f"flag {key!r}{where} has both a split and a rollout: keep one")
    description = table.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"flag {key!r}{where}: description must be text")
    return FlagDefinition(key, kind, default, source if "default" in table else base.source,  # type: ignore[union-attr]
                          description, rules, variants, split, rollout, source)


def _list(key: str, raw: object, name: str, where: str) -> list[Any]:
    if not isinstance(raw, list):
        raise ConfigError(f"flag {key!r}{where}: {name} must be a list ([[flags.\"{key}\".{name}]] tables)")
    return raw


def _variants(key: str, kind: str, raw: object, where: str) -> dict[str, FlagValue]:
    if not isinstance(raw, dict):
        raise ConfigError(f"flag {key!r}{where}: variants must be a table of name = value")
    return {str(name): check_value(key, kind, value, f"{where} (variant {name!r})") for name, value in raw.items()}


def variant_value(key: str, kind: str, name: str, variants: Mapping[str, FlagValue], where: str) -> FlagValue:
    """A variant's value: the one ``variants`` names, else the name read as a ``kind`` value (``dark``, ``true``)."""
    if name in variants:
        return variants[name]
    try:
        return parse_text(key, kind, name)
    except ConfigError:
        known = f"; variants: {', '.join(variants)}" if variants else ""
        raise ConfigError(f"flag {key!r}{where}: variant {name!r} is neither a defined variant nor "
                          f"{_words(kind)}{known}") from None


def _split(key: str, kind: str, raw: object, variants: Mapping[str, FlagValue], where: str) -> dict[str, int]:
    if not isinstance(raw, dict):
        raise ConfigError(f"flag {key!r}{where}: split must be a table of variant = weight")
    split: dict[str, int] = {}
    for name, weight in raw.items():
        variant_value(key, kind, str(name), variants, where)
        if type(weight) is not int or weight < 0:
            raise ConfigError(f"flag {key!r}{where}: the weight of variant {name!r} must be a whole number >= 0, "
                              f"not {weight!r}")
        split[str(name)] = weight
    if split and sum(split.values()) == 0:
        raise ConfigError(f"flag {key!r}{where}: the split's weights add up to 0; give a variant some weight")
    return split


def _rule(key: str, kind: str, number: int, raw: object, variants: Mapping[str, FlagValue], where: str) -> Rule:
    here = f"{where} (rule {number})"
    if not isinstance(raw, dict) or set(raw) - {"when", "value", "variant"} or "when" not in raw:
        raise ConfigError(f"flag {key!r}{here}: a rule is {{when = {{tenant = \"acme\"}}, value = ...}} "
                          f"(or variant = NAME instead of value), not {raw!r}")
    when = parse_when(key, raw["when"], here)
    if ("value" in raw) == ("variant" in raw):
        raise ConfigError(f"flag {key!r}{here}: a rule needs exactly one of value or variant")
    if "variant" in raw:
        name = str(raw["variant"])
        return Rule(when, variant_value(key, kind, name, variants, here), name)
    return Rule(when, check_value(key, kind, raw["value"], here))


def parse_when(key: str, raw: object, where: str) -> dict[str, tuple[str, ...]]:
    """A rule's conditions: attribute -> the values it may have (one text, or a list of them)."""
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"flag {key!r}{where}: when must name at least one of {', '.join(CONTEXT_ATTRIBUTES)}, "
                          f"e.g. when = {{tenant = [\"acme\", \"globex\"]}}")
    when: dict[str, tuple[str, ...]] = {}
    for name, allowed in raw.items():
        if name not in CONTEXT_ATTRIBUTES:
            close = difflib.get_close_matches(name, CONTEXT_ATTRIBUTES, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConfigError(f"flag {key!r}{where}: a rule cannot match on {name!r}; {hint}"
                              f"attributes: {', '.join(CONTEXT_ATTRIBUTES)}")
        values = allowed if isinstance(allowed, list) else [allowed]
        if not values or not all(isinstance(v, str) and v for v in values):
            raise ConfigError(f"flag {key!r}{where}: {name} must be a non-empty text or list of texts, "
                              f"not {allowed!r}")
        when[name] = tuple(values)
    return when


def _rollout(key: str, kind: str, raw: object, where: str) -> Rollout:
    if not isinstance(raw, dict) or "percent" not in raw or set(raw) - {"percent", "value"}:
        raise ConfigError(f"flag {key!r}{where}: rollout is {{percent = 0-100, value = ...}}, not {raw!r}")
    percent = check_percent(key, raw["percent"], raw["percent"], where)
    if "value" not in raw and kind != "boolean":
        raise ConfigError(f"flag {key!r}{where}: a rollout of a {kind} flag needs the value it rolls out")
    return Rollout(percent, check_value(key, kind, raw.get("value", True), where))


def check_percent(key: str, percent: object, given: object, where: str = "") -> float:
    if type(percent) not in (int, float) or not 0 <= percent <= 100:  # type: ignore[operator]
        raise ConfigError(f"flag {key!r}{where}: a rollout percentage is a number from 0 to 100, not {given!r}")
    return float(percent)  # type: ignore[arg-type]


def unknown_flag(key: str, known: list[str]) -> ConfigError:
    """The error for a flag no preset or file defines, with the closest names."""
    by_lower = {name.lower(): name for name in known}
    close = [by_lower[m] for m in difflib.get_close_matches(key.lower(), list(by_lower), n=3, cutoff=0.6)]
    hint = f"did you mean {', '.join(close)}? " if close else ""
    return ConfigError(f"unknown feature flag {key!r}; {hint}`aigentflow flags list` shows every flag")
