"""The environment a run gets: an allowlist, minus anything whose name or value looks secret."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping

from aigentflow.redact import KEY_PATTERNS, looks_secret_name

DEFAULT_ENV_ALLOWLIST = (
    "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "TMPDIR", "USER", "LOGNAME",
    "SHELL", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED", "PYTHONUNBUFFERED", "CI", "NO_COLOR",
)  # fmt: skip
NEVER_INHERITED = frozenset({
    "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "LD_PRELOAD", "LD_LIBRARY_PATH",
    "LD_AUDIT", "BASH_ENV", "ENV",
})  # fmt: skip
"""Passed only when given in ``extra_env``, even if allowlisted: they change what code runs."""


@functools.lru_cache(maxsize=1)
def _key_shapes() -> tuple[tuple[tuple[str, ...], re.Pattern[str]], ...]:
    return tuple((triggers, re.compile(pattern)) for triggers, pattern in KEY_PATTERNS.values())


def looks_like_credential(value: str) -> bool:
    """Whether a value has the shape of a provider key, token or URL with a password in it."""
    return any(
        any(trigger in value for trigger in triggers) and pattern.search(value)
        for triggers, pattern in _key_shapes()
    )


def scrub_environment(
    source: Mapping[str, str], allowlist: Iterable[str], extra_env: Mapping[str, str] | None
) -> tuple[dict[str, str], list[str]]:
    """(the environment a run gets, the names dropped because they look secret)."""
    env = {name: source[name] for name in allowlist if name in source and name not in NEVER_INHERITED}
    env.update(extra_env or {})
    dropped = sorted(name for name, value in env.items() if looks_secret_name(name) or looks_like_credential(value))
    for name in dropped:
        del env[name]
    return env, dropped
