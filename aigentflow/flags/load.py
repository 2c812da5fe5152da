"""Where flag definitions come from: the preset (with the configuration's overrides) and the flags files.

Files, lowest first: ``<user config dir>/flags.toml`` < ``<project>/.aigentflow/flags.toml``; a flag
the project file defines replaces the user file's definition of it. A preset flag's static value is,
lowest first: the preset < a flags file's ``default`` < a ``flags.KEY`` configuration override
(config files, ``AIGENTFLOW_FLAGS__...``, ``--set``). Rules, splits and rollouts come from the files.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aigentflow.config import flags as presets
from aigentflow.flags.definitions import (
    FILE_NAME,
    FlagDefinition,
    check_value,
    parse_definition,
    preset_type,
    read_file,
)
from aigentflow.flags.evaluate import context_attributes

if TYPE_CHECKING:
    from aigentflow.config.loader import EffectiveConfig

FLAGS_FILE_SOURCE = "flags file"
"""How a flags file's values are labelled in ``aigentflow config list`` sources (``flags file PATH``)."""


def user_flags_file(env: Mapping[str, str] | None = None) -> Path:
    from aigentflow.config.loader import user_config_file

    return user_config_file(env).with_name(FILE_NAME)


def project_flags_file(project_root: Path) -> Path:
    from aigentflow.project.paths import ProjectPaths

    return ProjectPaths(project_root).state_dir / FILE_NAME


def flag_files(project_root: Path | None, env: Mapping[str, str] | None = None) -> list[Path]:
    """The flags files that apply, lowest first (they need not exist)."""
    files = [user_flags_file(env)]
    if project_root is not None:
        files.append(project_flags_file(project_root))
    return files


def file_tables(files: list[Path]) -> dict[str, tuple[dict[str, Any], str]]:
    """Each flag's table in the highest file that defines it, with that file's label."""
    tables: dict[str, tuple[dict[str, Any], str]] = {}
    for path in files:
        label = f"{FLAGS_FILE_SOURCE} {path}"
        for key, table in read_file(path).items():
            tables[key] = (table, label)
    return tables


def static_defaults(files: list[Path]) -> dict[str, tuple[object, str]]:
    """The preset flags whose ``default`` a flags file sets: key -> (checked value, source label)."""
    defaults: dict[str, tuple[object, str]] = {}
    for key, (table, label) in file_tables(files).items():
        if key in presets.FLAG_NAMES and "default" in table:
            defaults[key] = (check_value(key, preset_type(key), table["default"], f" in {label}"), label)
    return defaults


def definitions(config: EffectiveConfig, files: list[Path]) -> dict[str, FlagDefinition]:
    """Every flag: the preset's (their static values as ``config`` resolved them) and the files' own."""
    preset = config.settings.flags.preset
    found: dict[str, FlagDefinition] = {}
    for key in sorted(presets.FLAG_NAMES):
        found[key] = FlagDefinition(key, preset_type(key), config.flags[key],
                                    config.sources.get(f"flags.{key}", f"preset {preset}"))
    for key, (table, label) in file_tables(files).items():
        base = found.get(key) if key in presets.FLAG_NAMES else None
        parsed = parse_definition(key, table, base, label)
        # a configuration override outranks the file's default (config.flags holds the winner)
        found[key] = replace(parsed, default=config.flags[key], source=base.source) if base else parsed
    return found


def current_user(env: Mapping[str, str] | None = None) -> str:
    """Who is evaluating or changing flags: ``AIGENTFLOW_USER``, else the login name."""
    explicit = (os.environ if env is None else env).get("AIGENTFLOW_USER")
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def default_context(config: EffectiveConfig, project_root: Path | None, env: Mapping[str, str] | None = None,
                    **given: str | None) -> dict[str, str]:
    """The attributes of this process's evaluations: ``given`` ones, else the configured tenant, the
    project's directory name and the current user (no role unless given)."""
    return context_attributes(
        tenant=given.get("tenant") or config.settings.run.tenant,
        project=given.get("project") or (project_root.name if project_root else None),
        role=given.get("role"),
        user=given.get("user") or current_user(env),
    )
