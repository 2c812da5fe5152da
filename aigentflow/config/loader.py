"""Layered configuration, validated by one pydantic model per section.

Layers, lowest first: built-in defaults < user file (``<user config dir>/config.toml``) < project
file (``<git root>/.aigentflow/config.toml``) < environment (``AIGENTFLOW_MODEL__NAME``) < command
line overrides. Scalars are addressed by dotted keys (``model.name``, ``flags.agents.analyst``);
``[[hooks]]`` tables from both files are concatenated, user hooks first.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from aigentflow.config import flags as feature_flags
from aigentflow.config.settings import (
    BuildSettings,
    ComplianceSettings,
    FlagSettings,
    GdprSettings,
    GitSettings,
    HookConfig,
    ModelSettings,
    RunSettings,
    Settings,
    SkillSettings,
    ToolSettings,
    TraceSettings,
)
from aigentflow.exceptions import ConfigError
from aigentflow.flags.load import flag_files, static_defaults
from aigentflow.project.paths import ProjectPaths, user_config_dir

ENV_PREFIX = "AIGENTFLOW_"
COMMAND_LINE = "command line"

Entry = tuple[str, object, str]
"""One layer's setting: dotted key, validated value, source label."""


_SECTIONS: dict[str, type[BaseModel]] = {
    "model": ModelSettings,
    "run": RunSettings,
    "trace": TraceSettings,
    "git": GitSettings,
    "build": BuildSettings,
    "compliance": ComplianceSettings,
    "tools": ToolSettings,
    "skills": SkillSettings,
    "gdpr": GdprSettings,
}
_FLAG_PREFIX = "flags."
_PRESET_KEY = "flags.preset"
_AGENT_KEY = re.compile(r"agents\.([a-z][a-z0-9_]*)\.version")
"""``agents.<role>.version``: which version of a role runs use (the roles are the registry's, checked at run start)."""


def _agent_role(key: str) -> str | None:
    match = _AGENT_KEY.fullmatch(key)
    return match.group(1) if match else None


@cache
def _known_keys() -> tuple[str, ...]:
    section_keys = [f"{s}.{name}" for s, model in _SECTIONS.items() for name in model.model_fields]
    flag_keys = [_FLAG_PREFIX + name for name in sorted(feature_flags.FLAG_NAMES)]
    return (*section_keys, _PRESET_KEY, *flag_keys)


def known_keys() -> list[str]:
    """Every dotted key, in display order: sections, then the preset, then each feature flag."""
    return list(_known_keys())


def _flag_name(key: str) -> str | None:
    """The feature flag a key addresses, or None for any other key."""
    if key.startswith(_FLAG_PREFIX) and key != _PRESET_KEY:
        return key.removeprefix(_FLAG_PREFIX)
    return None


_RETIRED_KEYS = {
    "model.replay_strict": "replay now answers only prompts it has a recording for "
    "(model.replay_lenient = true relaxes that for prompt development)",
}


def _check_key(key: str, origin: str | None = None) -> None:
    if key in _known_keys() or _agent_role(key):
        return
    where = f" in {origin}" if origin else ""
    if key in _RETIRED_KEYS:
        raise ConfigError(f"{key!r}{where} was removed: {_RETIRED_KEYS[key]}; delete it from your configuration")
    if key == "hooks" or key.startswith("hooks."):
        raise ConfigError(
            f"{key!r}{where} is not a dotted key: hooks are [[hooks]] tables; edit the TOML file"
        )
    by_lower = {known.lower(): known for known in _known_keys()}
    close = [by_lower[m] for m in difflib.get_close_matches(key.lower(), list(by_lower), n=3)]
    hint = f"did you mean {', '.join(close)}? " if close else ""
    if key.startswith("agents."):
        hint += "a role's version is agents.<role>.version; "
    raise ConfigError(
        f"unknown configuration key {key!r}{where}; {hint}`aigentflow config list` shows every key"
    )


def describe_key(key: str) -> str:
    """The one-line description of a key."""
    _check_key(key)
    role = _agent_role(key)
    if role is not None:
        return f"The version of the {role} role runs use (`aigentflow agents list`); unset: the built-in one."
    flag = _flag_name(key)
    if flag is not None:
        kind = "true/false" if feature_flags.flag_type(flag) is bool else "a whole number"
        per_preset = ", ".join(
            f"{preset}={display_value(values.get(flag, feature_flags.default_value(flag)))}"
            for preset, values in feature_flags.PRESETS.items()
        )
        return f"Feature flag ({kind}); presets: {per_preset}."
    section, name = key.split(".", 1)
    model = FlagSettings if section == "flags" else _SECTIONS[section]
    return model.model_fields[name].description or ""


def _expected_type(key: str) -> type:
    if _agent_role(key):
        return str
    flag = _flag_name(key)
    if flag is not None:
        return feature_flags.flag_type(flag)
    if key == _PRESET_KEY:
        return str
    section, name = key.split(".", 1)
    annotation = _SECTIONS[section].model_fields[name].annotation
    return list if annotation == list[str] else annotation  # type: ignore[return-value]


_KIND_TEXT = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "text",
    list: "a list of text (comma-separated or a JSON list)",
}


def allowed_values(key: str) -> str:
    """What a key accepts, in words, from the field's type and bounds."""
    _check_key(key)
    if key == _PRESET_KEY:
        return "one of " + ", ".join(feature_flags.PRESETS)
    if _agent_role(key):
        return "a version of the role (PEP 440, e.g. 1.0.0); `aigentflow agents list` shows them"
    kind = _KIND_TEXT[_expected_type(key)]
    if _flag_name(key) is not None:
        return kind if kind == _KIND_TEXT[bool] else f"{kind} >= 0"
    section, name = key.split(".", 1)
    constraints = _SECTIONS[section].model_fields[name].metadata
    bounds = {
        attr: getattr(each, attr)
        for each in constraints
        for attr in ("ge", "gt", "le", "lt")
        if getattr(each, attr, None) is not None
    }
    if "ge" in bounds and "le" in bounds:
        return f"{kind} from {bounds['ge']} to {bounds['le']}"
    words = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    limits = " and ".join(f"{words[attr]} {limit}" for attr, limit in bounds.items())
    return f"{kind} {limits}" if limits else kind


def _bad_value(key: str, value: object, origin: str, reason: str) -> ConfigError:
    return ConfigError(
        f"{key} = {value!r} from {origin} is not allowed ({reason}); "
        f"allowed: {allowed_values(key)}"
    )


def _from_text(key: str, text: str, origin: str) -> object:
    """Convert a string from the environment or the command line to the key's type."""
    expected = _expected_type(key)
    stripped = text.strip()
    if expected in (bool, int, float):
        try:  # pydantic's lax parsing: "true"/"false"/"1"/"0"/"yes"/"no", "12", "0.5"
            return TypeAdapter(expected).validate_python(stripped)
        except ValidationError:
            raise _bad_value(key, text, origin, f"not {_KIND_TEXT[expected]}") from None
    if expected is list:
        if not stripped.startswith("["):
            return [part.strip() for part in text.split(",") if part.strip()]
        try:
            items = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise _bad_value(key, text, origin, f"malformed JSON list: {exc}") from None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise _bad_value(key, text, origin, "the JSON list must hold only strings")
        return items
    return text


def _validated(key: str, value: object, origin: str, given: object = None) -> object:
    """``value`` checked against the key's field; errors name ``origin`` and ``given``."""
    _check_key(key, origin)
    shown = value if given is None else given
    flag = _flag_name(key)
    if flag is not None:
        try:
            return feature_flags.check_flag_value(flag, value)
        except ConfigError:
            raise _bad_value(key, shown, origin, "wrong type for this flag") from None
    if key == _PRESET_KEY:
        if value not in feature_flags.PRESETS:
            raise _bad_value(key, shown, origin, "unknown preset")
        return value
    if _agent_role(key):
        from aigentflow.roles.spec import check_version

        try:
            return check_version(value) if isinstance(value, str) else check_version(str(value))
        except ValueError as exc:
            raise _bad_value(key, shown, origin, str(exc)) from None
    section, name = key.split(".", 1)
    try:
        checked = _SECTIONS[section].model_validate({name: value}, strict=True)
    except ValidationError as exc:
        raise _bad_value(key, shown, origin, _reasons(exc)) from None
    return getattr(checked, name)


def _parsed(key: str, text: str, origin: str) -> object:
    """A string from the environment or the command line, converted and validated."""
    _check_key(key, origin)
    return _validated(key, _from_text(key, text, origin), origin, given=text)


def _reasons(exc: ValidationError) -> str:
    errors = exc.errors()
    return "; ".join("".join(f"{part}: " for part in err["loc"]) + err["msg"] for err in errors)


def _flatten(table: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, value in table.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


CATALOG_TABLES = ("providers", "models", "routing")
"""Tables taken whole from a file, not as dotted keys: the model catalogue (``aigentflow.config.models``).
A later file's provider or model of the same name replaces an earlier one's; its routing keys replace
the earlier ones (its rules all of them)."""


def _file_layer(path: Path, origin: str) -> tuple[list[Entry], list[HookConfig], dict[str, Any]]:
    """The keys, hooks and catalogue tables of one TOML file (none if it does not exist)."""
    if not path.exists():
        return [], [], {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {origin}: {exc}; fix or remove the file") from None
    hooks = _hooks(data.pop("hooks", []), origin)
    data.pop("incidents", None)  # alert routes and detection: validated by aigentflow.incidents.config
    catalog = {table: data.pop(table) for table in CATALOG_TABLES if table in data}
    for table, value in catalog.items():
        if not isinstance(value, dict):
            raise ConfigError(f"{table} in {origin} must be a [{table}] table")
    entries = [(key, _validated(key, value, origin), origin) for key, value in _flatten(data)]
    return entries, hooks, catalog


def _hooks(raw: object, origin: str) -> list[HookConfig]:
    if not isinstance(raw, list):
        raise ConfigError(f"hooks in {origin} must be [[hooks]] tables (an array of tables)")
    hooks = []
    for number, table in enumerate(raw, start=1):
        try:
            hooks.append(HookConfig.model_validate(table, strict=True))
        except ValidationError as exc:
            raise ConfigError(f"hook #{number} in {origin} is invalid: {_reasons(exc)}") from None
    return hooks


def env_name(key: str) -> str:
    """The environment variable that sets ``key``: ``model.name`` -> ``AIGENTFLOW_MODEL__NAME``."""
    return ENV_PREFIX + key.upper().replace(".", "__")


def _env_layer(env: Mapping[str, str]) -> list[Entry]:
    keys_by_env_name = {env_name(key): key for key in _known_keys()}
    entries = []
    for variable in sorted(env):
        upper = variable.upper()
        if not upper.startswith(ENV_PREFIX) or "__" not in upper.removeprefix(ENV_PREFIX):
            continue
        origin = f"env {variable}"
        key = keys_by_env_name.get(upper)
        agent = re.fullmatch(ENV_PREFIX + r"AGENTS__([A-Z][A-Z0-9_]*?)__VERSION", upper)
        if key is None and agent:
            key = f"agents.{agent.group(1).lower()}.version"
        if key is None:
            close = difflib.get_close_matches(upper, list(keys_by_env_name), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(
                f"environment variable {variable} matches no configuration key{hint} "
                "Rename or unset it."
            )
        entries.append((key, _parsed(key, env[variable], origin), origin))
    return entries


def _override_layer(overrides: Mapping[str, object]) -> list[Entry]:
    entries = []
    for key, value in overrides.items():
        check = _parsed if isinstance(value, str) else _validated
        entries.append((key, check(key, value, COMMAND_LINE), COMMAND_LINE))
    return entries


def user_config_file(env: Mapping[str, str] | None = None) -> Path:
    """The user's config file; ``AIGENTFLOW_CONFIG_HOME`` in ``env`` wins over the usual lookup."""
    explicit = (os.environ if env is None else env).get("AIGENTFLOW_CONFIG_HOME")
    return (Path(explicit) if explicit else user_config_dir()) / "config.toml"


@dataclass(frozen=True)
class EffectiveConfig:
    """The merged configuration, and which layer each key's value came from."""

    settings: Settings
    flags: dict[str, bool | int]
    sources: dict[str, str]

    def get(self, key: str) -> object:
        """The effective value of a dotted key."""
        _check_key(key)
        flag = _flag_name(key)
        if flag is not None:
            return self.flags[flag]
        role = _agent_role(key)
        if role is not None:
            choice = self.settings.agents.get(role)
            return choice.version if choice else None
        section, name = key.split(".", 1)
        return getattr(getattr(self.settings, section), name)

    def items(self) -> list[tuple[str, object, str]]:
        """(key, value, source) for every key, feature flags and the role versions set included."""
        chosen = [f"agents.{role}.version" for role in sorted(self.settings.agents)]
        return [(key, self.get(key), self.sources.get(key, "default")) for key in (*_known_keys(), *chosen)]


def load_config(
    project_root: Path | None,
    overrides: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> EffectiveConfig:
    """Merge the five layers and validate them; ConfigError names the layer that is wrong."""
    env = os.environ if env is None else env
    sources = {key: "default" for key in _known_keys() if _flag_name(key) is None}
    user_file = user_config_file(env)
    origins = [f"user file {user_file}"]
    layers = [_file_layer(user_file, origins[0])]
    if project_root is not None:
        origins.append(f"project file {ProjectPaths(project_root).config_file}")
        layers.append(_file_layer(ProjectPaths(project_root).config_file, origins[-1]))
    layers += [(_env_layer(env), [], {}), (_override_layer(overrides or {}), [], {})]

    merged = Settings().model_dump(exclude={"hooks"})
    # a flags file's `default` of a preset flag sits between the preset and the configuration's overrides
    for flag, (value, source) in static_defaults(flag_files(project_root, env)).items():
        merged["flags"]["overrides"][flag] = value
        sources[_FLAG_PREFIX + flag] = source
    hooks: list[HookConfig] = []
    catalog_origins: list[str] = []
    for number, (entries, layer_hooks, catalog) in enumerate(layers):
        hooks += layer_hooks
        for table, value in catalog.items():
            merged[table].update(value)
        if catalog:
            catalog_origins.append(origins[number])
        for key, value, source in entries:
            role = _agent_role(key)
            if role is not None:
                merged["agents"].setdefault(role, {})["version"] = value
                sources[key] = source
                continue
            section, name = key.split(".", 1)
            table = merged["flags"]["overrides"] if _flag_name(key) else merged[section]
            table[name] = value
            sources[key] = source

    try:
        settings = Settings.model_validate(merged | {"hooks": hooks})
    except ValidationError as exc:
        raise ConfigError(f"the configuration is invalid: {_reasons(exc)}"
                          + (f" (providers, models, routing from {', '.join(catalog_origins)})"
                             if catalog_origins else "")) from None
    flags = feature_flags.resolve_flags(settings.flags.preset, settings.flags.overrides)
    preset_source = f"preset {settings.flags.preset}"
    ordered_sources = {key: sources.get(key, preset_source) for key in _known_keys()}
    ordered_sources.update({key: source for key, source in sources.items() if _agent_role(key)})
    return EffectiveConfig(settings, flags, ordered_sources)


def display_value(value: object) -> str:
    """A value as a person types it: ``true``/``false``, lists as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, list) else str(value)


def set_value(path: Path, key: str, value: str) -> None:
    """Validate ``key = value`` and write it into the TOML file at ``path``, keeping comments."""
    typed = _parsed(key, value, COMMAND_LINE)
    document = _editable(path)
    section, name = key.split(".", 1)
    if section not in document:
        document[section] = {}
    table = document[section]
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {section!r} is not a [{section}] table; fix the file first")
    if section in ("flags", "agents"):
        _remove_nested(table, name)
    table[name] = typed
    _write(path, document)


def unset_value(path: Path, key: str) -> bool:
    """Remove ``key`` from the TOML file at ``path``; False when it was not set there."""
    document = _editable(path) if path.exists() else {}
    section, name = key.split(".", 1) if "." in key else (key, "")
    table = document.get(section)
    removed = isinstance(table, dict) and (
        _remove_nested(table, name) if section in ("flags", "agents") else table.pop(name, None) is not None
    )
    if not removed:
        _check_key(key)
        return False
    _write(path, document)
    return True


def _remove_nested(table: dict[str, Any], name: str) -> bool:
    """Remove a flag written either as ``"agents.analyst" = x`` or as ``agents.analyst = x``."""
    removed = table.pop(name, None) is not None
    *parents, leaf = name.split(".")
    node: Any = table
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and leaf in node:
        del node[leaf]
        removed = True
    return removed


def _editable(path: Path) -> Any:
    import tomlkit  # only editing needs it: keeps `load_config` imports light

    try:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        return tomlkit.parse(text)
    except (OSError, UnicodeDecodeError, tomlkit.exceptions.ParseError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}; fix or remove the file") from None


def _write(path: Path, document: Any) -> None:
    import tomlkit

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(tomlkit.dumps(document), encoding="utf-8")
    os.replace(temporary, path)
