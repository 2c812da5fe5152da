"""The environment a run gets: an allowlist, the names passed through, minus anything secret-looking.

Three outcomes for a variable of the caller's environment:
- passed: allowlisted, or named by a passthrough pattern (``build.env_passthrough``), or given
  explicitly in ``extra_env``;
- refused: it was to be passed, but its name or its value looks secret (``refused``, names only);
- withheld: not asked for. ``withheld_names`` lists those worth telling a user about when a run
  fails (not terminal or shell noise, not secret-looking), the build-relevant ones first.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

from aigentflow.redact import KEY_PATTERNS, looks_secret_name

DEFAULT_ENV_ALLOWLIST = (
    "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "TMPDIR", "USER", "LOGNAME",
    "SHELL", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED", "PYTHONUNBUFFERED", "CI", "NO_COLOR",
)  # fmt: skip
NEVER_INHERITED = frozenset({
    "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "LD_PRELOAD", "LD_LIBRARY_PATH",
    "LD_AUDIT", "BASH_ENV", "ENV",
})  # fmt: skip
"""Passed only when named exactly (in ``extra_env`` or as a passthrough name, never through a glob
pattern or the allowlist): they change what code runs."""

NOISE_NAMES = frozenset({
    "_", "PWD", "OLDPWD", "SHLVL", "PS1", "PS2", "PS3", "PS4", "PROMPT_COMMAND", "HISTFILE",
    "HISTSIZE", "HISTFILESIZE", "HISTCONTROL", "LS_COLORS", "LSCOLORS", "CLICOLOR", "COLORTERM",
    "COLUMNS", "LINES", "DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY", "MAIL", "EDITOR", "VISUAL",
    "PAGER", "LESS", "LESSOPEN", "LESSCLOSE", "MANPATH", "INFOPATH", "HOSTNAME", "HOSTTYPE",
    "OSTYPE", "MACHTYPE", "MOTD_SHOWN", "WINDOWID", "DESKTOP_SESSION", "TMUX", "TMUX_PANE", "STY",
    "SUDO_USER", "SUDO_UID", "SUDO_GID", "SUDO_COMMAND", "VIRTUAL_ENV_PROMPT", "SHELL_SESSION_ID",
    "LITELLM_LOCAL_MODEL_COST_MAP",
})  # fmt: skip
NOISE_PREFIXES = (
    "SSH_", "XDG_", "DBUS_", "GPG_", "TERM_", "VTE_", "KONSOLE_", "GNOME_", "ITERM_", "WT_", "LC_",
    "BASH_FUNC_", "ZSH", "VSCODE_", "AIGENTFLOW_", "RAY_",
)  # fmt: skip
"""Terminal, shell and desktop session variables, and aigentflow's and Ray's own: never reported."""

BUILD_RELEVANT = frozenset({
    "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CONDA_PREFIX", "NODE_PATH", "NODE_OPTIONS",
    "NODE_ENV", "JAVA_HOME", "CLASSPATH", "GOPATH", "GOROOT", "GOFLAGS", "CARGO_HOME",
    "RUSTUP_HOME", "RUSTFLAGS", "GEM_HOME", "GEM_PATH", "BUNDLE_GEMFILE", "LD_LIBRARY_PATH",
    "PKG_CONFIG_PATH", "CC", "CXX", "CFLAGS", "CXXFLAGS", "LDFLAGS", "MAKEFLAGS",
    "DJANGO_SETTINGS_MODULE", "PYTEST_ADDOPTS",
})  # fmt: skip
"""Reported first: variables that commonly decide whether a project's build or tests work."""


@functools.lru_cache(maxsize=1)
def _key_shapes() -> tuple[tuple[tuple[str, ...], re.Pattern[str]], ...]:
    return tuple((triggers, re.compile(pattern)) for triggers, pattern in KEY_PATTERNS.values())


def looks_like_credential(value: str) -> bool:
    """Whether a value has the shape of a provider key, token or URL with a password in it."""
    return any(
        any(trigger in value for trigger in triggers) and pattern.search(value)
        for triggers, pattern in _key_shapes()
    )


def _is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


def passthrough_names(source: Mapping[str, str], patterns: Iterable[str]) -> list[str]:
    """The names in ``source`` that ``patterns`` (exact names or globs such as ``MYAPP_*``) select.
    A name of ``NEVER_INHERITED`` is selected only by its exact name, never by a glob."""
    exact = {pattern for pattern in patterns if not _is_glob(pattern)}
    globs = [pattern for pattern in patterns if _is_glob(pattern)]
    return sorted(
        name for name in source
        if name in exact or (name not in NEVER_INHERITED and any(fnmatchcase(name, g) for g in globs))
    )  # fmt: skip


def scrub_environment(
    source: Mapping[str, str],
    allowlist: Iterable[str],
    extra_env: Mapping[str, str] | None,
    passthrough: Iterable[str] = (),
) -> tuple[dict[str, str], list[str]]:
    """(the environment a run gets, the names refused because their name or value looks secret)."""
    env = {name: source[name] for name in allowlist if name in source and name not in NEVER_INHERITED}
    env.update({name: source[name] for name in passthrough_names(source, list(passthrough))})
    env.update(extra_env or {})
    dropped = sorted(name for name, value in env.items() if looks_secret_name(name) or looks_like_credential(value))
    for name in dropped:
        del env[name]
    return env, dropped


def is_noise(name: str) -> bool:
    return name in NOISE_NAMES or name.startswith(NOISE_PREFIXES)


def withheld_names(source: Mapping[str, str], env: Mapping[str, str], refused: Iterable[str]) -> list[str]:
    """The variables of ``source`` a run did not get and could get through ``build.env_passthrough``
    (names only): neither noise nor secret-looking by name or value. Build-relevant ones first."""
    skipped = set(env) | set(refused)
    names = [
        name for name, value in source.items()
        if name not in skipped and not is_noise(name) and not looks_secret_name(name)
        and not looks_like_credential(value)
    ]  # fmt: skip
    return sorted(names, key=lambda name: (name not in BUILD_RELEVANT, name))
