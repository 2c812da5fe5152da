"""Changing flags in the project's flags file (``.aigentflow/flags.toml``), each change audited.

Every change is checked whole before the file is written: a bad value, type, percentage or rule is a
ConfigError and leaves the file (and the audit log) as they were. Each written change appends a
``flag.changed`` audit entry: who, which flag, what changed, old -> new.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aigentflow.config import flags as presets
from aigentflow.exceptions import ConfigError
from aigentflow.flags.definitions import (
    TYPES,
    FlagDefinition,
    check_percent,
    parse_definition,
    parse_text,
    parse_when,
    read_file,
    unknown_flag,
    variant_value,
)
from aigentflow.flags.load import current_user, definitions, flag_files, project_flags_file

AUDIT_EVENT = "flag.changed"
_NEW_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+")


@dataclass(frozen=True)
class Change:
    """One change made: the flag, what of it changed, its old and new value."""

    key: str
    change: str
    old: Any
    new: Any
    file: Path

    def audit_data(self, by: str) -> dict[str, Any]:
        return {"key": self.key, "change": self.change, "old": self.old, "new": self.new, "by": by,
                "file": str(self.file)}


class FlagEditor:
    """The project's flags as they are now, and the edits to its flags file."""

    def __init__(self, project_root: Path, env: Mapping[str, str] | None = None) -> None:
        from aigentflow.config.loader import load_config

        self.root = project_root
        self.env = env
        self.config = load_config(project_root, env=env)
        self.file = project_flags_file(project_root)
        self.tables = read_file(self.file)
        self.current = definitions(self.config, flag_files(project_root, env))

    def definition(self, key: str) -> FlagDefinition:
        if key not in self.current:
            raise unknown_flag(key, list(self.current))
        return self.current[key]

    def _kind(self, key: str, kind: str | None) -> str:
        """The flag's type: its own, or ``kind`` for a new flag (ConfigError when they disagree)."""
        if kind is not None and kind not in TYPES:
            raise ConfigError(f"--type {kind!r} is not one of {', '.join(TYPES)}")
        if key in self.current:
            own = self.current[key].type
            if kind is not None and kind != own:
                raise ConfigError(f"flag {key!r} is a {own} flag; --type {kind} does not fit it")
            return own
        if kind is None:
            raise ConfigError(f"{unknown_flag(key, list(self.current))}; to define a new flag, give --type "
                              f"({', '.join(TYPES)})")
        if not _NEW_KEY.fullmatch(key):
            raise ConfigError(f"{key!r} is not a flag name: use dotted words such as features.newPlanner")
        return kind

    def set_default(self, key: str, text: str, kind: str | None = None, description: str | None = None) -> Change:
        """Set the flag's static value (defining a new flag of type ``kind``)."""
        kind = self._kind(key, kind)
        value = parse_text(key, kind, text)
        old = self.current[key].default if key in self.current else None
        table = self._table(key)
        if key not in presets.FLAG_NAMES:
            table["type"] = kind
        table["default"] = value
        if description is not None:
            table["description"] = description
        return self._write(key, table, "default", old, value)

    def set_rule(self, key: str, text: str, conditions: list[str]) -> Change:
        """Add (or replace: same conditions) the targeting rule ``conditions`` -> ``text``."""
        kind = self._kind(key, None)
        when = parse_conditions(key, conditions)
        value = parse_text(key, kind, text)
        table = self._table(key)
        rules = list(table.get("rules", []))
        shown = {name: list(values) for name, values in when.items()}
        old = None
        for rule in rules:
            if _when_of(key, rule) == when:
                old = rule.get("value", rule.get("variant"))
                rules.remove(rule)
                break
        rules.append({"when": {n: v if len(v) > 1 else v[0] for n, v in shown.items()}, "value": value})
        table["rules"] = rules
        return self._write(key, table, f"rule {_describe(when)}", old, value)

    def remove_rule(self, key: str, conditions: list[str]) -> Change:
        self.definition(key)
        when = parse_conditions(key, conditions)
        table = self._table(key)
        rules = list(table.get("rules", []))
        for rule in rules:
            if _when_of(key, rule) == when:
                rules.remove(rule)
                break
        else:
            raise ConfigError(f"flag {key!r} has no rule {_describe(when)} in {self.file}")
        table["rules"] = rules
        if not rules:
            del table["rules"]
        return self._write(key, table, f"rule {_describe(when)}", rule.get("value", rule.get("variant")), None)

    def set_rollout(self, key: str, percent_text: str, value_text: str | None = None) -> Change:
        """Roll ``value`` (a boolean flag: true) out to ``percent`` of the subjects."""
        kind = self._kind(key, None)
        try:
            percent: object = float(percent_text)
        except ValueError:
            percent = percent_text
        percent = check_percent(key, percent, percent_text)
        table = self._table(key)
        old_rollout = table.get("rollout") or {}
        if value_text is not None:
            value = parse_text(key, kind, value_text)
        elif "value" in old_rollout:
            value = old_rollout["value"]
        elif kind == "boolean":
            value = True
        else:
            raise ConfigError(f"flag {key!r} is a {kind} flag: give the value to roll out with --value")
        if table.get("split"):
            raise ConfigError(f"flag {key!r} has an A/B split; remove it (`aigentflow flags unset {key} --split`) "
                              "before a rollout")
        table["rollout"] = {"percent": int(percent) if percent.is_integer() else percent, "value": value}
        return self._write(key, table, "rollout", old_rollout or None, table["rollout"])

    def set_split(self, key: str, weights: list[str]) -> Change:
        """An A/B split: ``variant=weight`` each, sticky per subject."""
        kind = self._kind(key, None)
        table = self._table(key)
        split: dict[str, int] = {}
        for item in weights:
            name, sep, weight = item.partition("=")
            if not sep or not name or not weight.strip().isdigit():
                raise ConfigError(f"{item!r} is not VARIANT=WEIGHT (a whole number), e.g. dark=50")
            variant_value(key, kind, name, table.get("variants", {}), "")
            split[name] = int(weight)
        if not split:
            raise ConfigError("give at least one VARIANT=WEIGHT")
        if table.get("rollout"):
            raise ConfigError(f"flag {key!r} has a rollout; remove it (`aigentflow flags unset {key} --rollout`) "
                              "before a split")
        old = table.get("split")
        table["split"] = split
        return self._write(key, table, "split", old, split)

    def unset(self, key: str, part: str | None = None) -> Change:
        """Remove the flag's definition from the file (or only its ``rollout`` or ``split``)."""
        self.definition(key)
        if key not in self.tables:
            raise ConfigError(f"flag {key!r} is not defined in {self.file}; nothing to remove")
        table = self._table(key)
        if part is None:
            return self._write(key, None, "definition", self.tables[key], None)
        if part not in table:
            raise ConfigError(f"flag {key!r} has no {part} in {self.file}")
        old = table.pop(part)
        return self._write(key, table, part, old, None)

    def set_table(self, key: str, table: dict[str, Any] | None, what: str) -> Change:
        """Replace the flag's whole table in the file (None: remove it), checked and audited as ``what``:
        what a phase rollback (``aigentflow admin rollback``) and its undo write."""
        self.definition(key)
        old = copy.deepcopy(self.tables.get(key))
        change = self._write(key, copy.deepcopy(table), what, old, table)
        if table is None:
            self.tables.pop(key, None)
        else:
            self.tables[key] = copy.deepcopy(table)
        return change

    def _table(self, key: str) -> dict[str, Any]:
        return copy.deepcopy(self.tables.get(key, {}))

    def _write(self, key: str, table: dict[str, Any] | None, what: str, old: Any, new: Any) -> Change:
        """Check the flag's new definition, write the file, audit the change."""
        if table is not None:
            base = self.current.get(key) if key in presets.FLAG_NAMES else None
            if base is not None and key not in self.tables:
                base = FlagDefinition(key, base.type, base.default, base.source)
            parse_definition(key, table, base, str(self.file))
        _write_table(self.file, key, table)
        change = Change(key, what, old, new, self.file)
        self._audit(change)
        return change

    def _audit(self, change: Change) -> None:
        from aigentflow.project.paths import ProjectPaths
        from aigentflow.store.sqlite import SQLiteRunStore

        store = SQLiteRunStore(ProjectPaths(self.root).database)
        try:
            store.append_audit(AUDIT_EVENT, None, change.audit_data(current_user(self.env)),
                               tenant_id=self.config.settings.run.tenant)
        finally:
            store.close()

    def shadowed_by(self, key: str) -> str | None:
        """The configuration layer whose ``flags.KEY`` outranks the file's default, if one does."""
        source = self.config.sources.get(f"flags.{key}", "")
        return None if not source or source.startswith(("preset ", "flags file")) else source


def parse_conditions(key: str, conditions: list[str]) -> dict[str, tuple[str, ...]]:
    """``--rule tenant=acme,globex --rule role=reviewer``: one rule, every condition must hold."""
    if not conditions:
        raise ConfigError("a rule needs at least one condition: --rule tenant=acme (or project=, role=, user=)")
    raw: dict[str, list[str]] = {}
    for condition in conditions:
        name, sep, values = condition.partition("=")
        parts = [part.strip() for part in values.split(",")]
        if not sep or not name.strip() or not all(parts):
            raise ConfigError(f"--rule {condition!r} is not ATTRIBUTE=VALUE[,VALUE...], e.g. tenant=acme,globex")
        if name.strip() in raw:
            raise ConfigError(f"--rule names {name.strip()} twice; list its values once: {name.strip()}=a,b")
        raw[name.strip()] = parts
    return parse_when(key, raw, " (--rule)")


def _when_of(key: str, rule: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    return parse_when(key, rule.get("when"), "")


def _describe(when: Mapping[str, tuple[str, ...]]) -> str:
    return " ".join(f"{name}={','.join(values)}" for name, values in when.items())


def _write_table(path: Path, key: str, table: dict[str, Any] | None) -> None:
    """Replace (or remove) one flag's table in the file, keeping the rest of it and its comments."""
    import os

    import tomlkit

    try:
        document = tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
    except (OSError, UnicodeDecodeError, tomlkit.exceptions.ParseError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}; fix or remove the file") from None
    if not document:
        document.add(tomlkit.comment("Feature flags (aigentflow flags --help; aigentflow/flags/README.md)."))
    if "flags" not in document:
        document["flags"] = tomlkit.table(is_super_table=True)
    flags = document["flags"]
    if table is None:
        flags.pop(key, None)  # type: ignore[union-attr]
    else:
        item = tomlkit.table()
        for name, value in table.items():
            item[name] = tomlkit.item(value)
        flags[key] = item  # type: ignore[index]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(tomlkit.dumps(document), encoding="utf-8")
    os.replace(temporary, path)
