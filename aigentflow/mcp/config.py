"""MCP servers as configured: the ``mcpServers`` JSON format other MCP clients use.

Two files, the project's over the user's (a project entry replaces a user entry of the same name,
whole)::

    <git root>/.aigentflow/mcp.json
    <user config dir>/mcp.json          (``$AIGENTFLOW_CONFIG_HOME``, ...; see ``aigentflow.project.paths``)

    {"mcpServers": {
        "time":   {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"]},
        "search": {"command": "npx", "args": ["-y", "some-server"], "env": {"API_KEY": "${SEARCH_KEY}"}},
        "docs":   {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"},
                   "timeout_s": 60}
    }}

An entry runs a command (stdio: ``command``, ``args``, ``env``, ``cwd``) or reaches a URL (Streamable
HTTP: ``url``, ``headers``); ``type`` (``stdio``, ``http``, ``streamable-http``) is inferred when
absent. ``timeout_s`` bounds each tool call (default 30), ``startup_timeout_s`` the server's start
and handshake (default 20); ``disabled: true`` leaves the entry out (and, in the project file,
switches off a user entry of the same name). Keys other MCP clients use are ignored.

``${VAR}`` and ``${VAR:-default}`` are expanded from the environment in ``command``, ``args``,
``env`` values, ``cwd``, ``url`` and ``headers`` values. Expanded values are often secrets: no
message, log line, ``repr`` or ``describe()`` ever contains one; they name the variable instead.

Stdlib only: importing this module loads neither the MCP SDK, nor Ray, nor a model library.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from aigentflow.exceptions import UsageError

CONFIG_FILENAME = "mcp.json"
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_STARTUP_TIMEOUT_S = 20.0

Transport = Literal["stdio", "http"]

SERVER_NAME = re.compile(r"[A-Za-z0-9_-]+")
"""Server names form tool ids (``server/tool``): letters, digits, ``-`` and ``_`` only."""

_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TYPES = {"stdio": "stdio", "http": "http", "streamable-http": "http", "streamable_http": "http"}
_KNOWN_KEYS = ("type", "command", "args", "env", "cwd", "url", "headers", "timeout_s", "startup_timeout_s",
               "disabled")  # fmt: skip
_FOREIGN_KEYS = frozenset({
    "timeout", "autoApprove", "alwaysAllow", "description", "envFile", "transport", "enabled", "name",
})  # fmt: skip
"""Keys other MCP clients write; ignored here (never mistaken for a typo of one of ours)."""


@dataclass(frozen=True, repr=False)
class ServerConfig:
    """One configured MCP server, its ``${VAR}`` references expanded.

    ``env`` and ``headers`` hold real (often secret) values: ``repr()`` and ``describe()`` show
    only their keys, and ``display`` is the command line or URL as written in the file, with its
    ``${VAR}`` references unexpanded.
    """

    name: str
    transport: Transport
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict, hash=False)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict, hash=False)
    timeout_s: float = DEFAULT_TIMEOUT_S
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S
    source: Path | None = None
    disabled: bool = False
    display: str | None = field(default=None, compare=False)

    def target(self) -> str:
        """What the server runs (the command line) or where it is (the URL, without credentials)."""
        if self.display:
            return self.display
        if self.transport == "stdio":
            return shlex.join([self.command or "", *self.args])
        return _public_url(self.url or "")

    def describe(self) -> str:
        """One line for people: transport, command line or URL, and only the *names* of env vars
        and headers (their values are often secrets)."""
        parts = [f"{self.transport}: {self.target()}"]
        if self.env:
            parts.append("env: " + ", ".join(sorted(self.env)))
        if self.headers:
            parts.append("headers: " + ", ".join(sorted(self.headers)))
        if self.cwd:
            parts.append(f"cwd: {self.cwd}")
        if self.disabled:
            parts.append("disabled")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The entry as data for ``--json``: keys of env and headers, never their values."""
        return {
            "name": self.name,
            "transport": self.transport,
            "target": self.target(),
            "env_keys": sorted(self.env),
            "header_keys": sorted(self.headers),
            "cwd": self.cwd,
            "timeout_s": self.timeout_s,
            "startup_timeout_s": self.startup_timeout_s,
            "source": str(self.source) if self.source else None,
            "disabled": self.disabled,
        }

    def secret_values(self) -> list[str]:
        """The configured env and header values, for scrubbing text a server sends back (stderr)."""
        return [v for v in (*self.env.values(), *self.headers.values()) if len(v) >= 4]

    def __repr__(self) -> str:
        return f"ServerConfig(name={self.name!r}, {self.describe()}, source={self.source})"


def project_config_file(project_root: Path) -> Path:
    """The project's MCP server file: ``<root>/.aigentflow/mcp.json``."""
    from aigentflow.project.paths import STATE_DIRNAME

    return Path(project_root) / STATE_DIRNAME / CONFIG_FILENAME


def user_config_file(user_dir: Path | None = None) -> Path:
    """The user's MCP server file: ``<user config dir>/mcp.json``."""
    if user_dir is None:
        from aigentflow.project.paths import user_config_dir

        user_dir = user_config_dir()
    return Path(user_dir) / CONFIG_FILENAME


def config_files(project_root: Path | None, user_dir: Path | None = None) -> list[Path]:
    """The files ``load_servers`` reads, lowest precedence first (whether they exist or not)."""
    files = [user_config_file(user_dir)]
    if project_root is not None:
        files.append(project_config_file(project_root))
    return files


def load_servers(
    project_root: Path | None,
    user_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    include_disabled: bool = False,
    expand: bool = True,
) -> dict[str, ServerConfig]:
    """The configured servers by name, project entries over user entries, ``${VAR}`` expanded.

    ``environ`` (default ``os.environ``) is what ``${VAR}`` reads. Disabled entries are left out
    unless ``include_disabled``; they, and every entry when ``expand`` is false (for listing), are
    returned unexpanded, so their variables need not be set. Raises ``UsageError`` naming the
    file, the server and what is wrong: invalid JSON (with line and column), a missing
    ``mcpServers`` object, an entry with neither or both of ``command`` and ``url``, a wrong type,
    a URL that is not http(s), an unset variable without a default.
    """
    environ = os.environ if environ is None else environ
    entries = _merged_entries(project_root, user_dir)
    return {
        name: entry.build(environ, expand=expand)
        for name, entry in entries.items()
        if include_disabled or not entry.disabled
    }


def load_server(
    name: str, project_root: Path | None, user_dir: Path | None = None, environ: Mapping[str, str] | None = None
) -> ServerConfig:
    """One configured server, expanded; the other entries' variables need not be set.

    Raises ``UsageError`` when no server has that name (the message lists the configured ones), when
    it is disabled, or when its entry is invalid.
    """
    entries = _merged_entries(project_root, user_dir)
    entry = entries.get(name)
    if entry is None:
        known = ", ".join(sorted(n for n, e in entries.items() if not e.disabled)) or "none"
        files = " or ".join(str(p) for p in reversed(config_files(project_root, user_dir)))
        raise UsageError(f"no MCP server named {name!r} is configured (configured: {known}). "
                         f"Add it to {files}, or see `aigentflow mcp list`.")
    if entry.disabled:
        raise UsageError(f'MCP server {name!r} is disabled in {entry.path} ("disabled": true); remove that key '
                         "to use it.")
    return entry.build(os.environ if environ is None else environ)


def _merged_entries(project_root: Path | None, user_dir: Path | None) -> dict[str, _Entry]:
    user_file = user_config_file(user_dir)
    layers = [(user_file, user_file.parent)]
    if project_root is not None:
        layers.append((project_config_file(project_root), Path(project_root)))
    entries: dict[str, _Entry] = {}
    for path, base_dir in layers:
        for entry in _read_file(path, base_dir):
            entries[entry.name] = entry
    return entries


@dataclass(frozen=True)
class _Entry:
    """One entry as written, checked for shape, not yet expanded."""

    name: str
    path: Path
    base_dir: Path
    transport: Transport
    command: str | None
    args: tuple[str, ...]
    env: dict[str, str]
    cwd: str | None
    url: str | None
    headers: dict[str, str]
    timeout_s: float
    startup_timeout_s: float
    disabled: bool

    def fail(self, what: str) -> UsageError:
        return UsageError(f"{self.path}: server {self.name!r}: {what}")

    def display(self) -> str:
        if self.transport == "stdio":
            return shlex.join([self.command or "", *self.args])
        return _public_url(self.url or "")

    def build(self, environ: Mapping[str, str], *, expand: bool = True) -> ServerConfig:
        if self.disabled or not expand:  # not to be started: its variables need not be set
            return ServerConfig(
                name=self.name, transport=self.transport, command=self.command, args=self.args, env=dict(self.env),
                cwd=self.cwd, url=self.url, headers=dict(self.headers), timeout_s=self.timeout_s,
                startup_timeout_s=self.startup_timeout_s, source=self.path, disabled=self.disabled,
                display=self.display(),
            )

        def expand(value: str, where: str) -> str:
            return _expand(value, where, environ, self.fail)

        command = expand(self.command, "command") if self.command is not None else None
        if command is not None and not command.strip():
            raise self.fail("`command` is empty after expanding its ${...} references; set the variable it uses.")
        args = tuple(expand(arg, f"args[{i}]") for i, arg in enumerate(self.args))
        env = {key: expand(value, f"env.{key}") for key, value in self.env.items()}
        headers = {key: expand(value, f"headers.{key}") for key, value in self.headers.items()}
        cwd = None
        if self.cwd is not None:
            cwd_path = Path(expand(self.cwd, "cwd")).expanduser()
            cwd = str(cwd_path if cwd_path.is_absolute() else (self.base_dir / cwd_path))
        url = None
        if self.url is not None:
            url = expand(self.url, "url")
            expanded = url != self.url
            problem = _url_problem(url, show_scheme=not expanded)
            if problem:
                after = " (after expanding its ${...} references)" if expanded else ""
                raise self.fail(f"`url`{after} {problem}")
        return ServerConfig(
            name=self.name, transport=self.transport, command=command, args=args, env=env, cwd=cwd, url=url,
            headers=headers, timeout_s=self.timeout_s, startup_timeout_s=self.startup_timeout_s, source=self.path,
            display=self.display(),
        )


def _read_file(path: Path, base_dir: Path) -> list[_Entry]:
    """The entries of one ``mcpServers`` file; none when it does not exist or is blank."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"cannot read MCP server config {path}: {reason}") from None
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}. "
            'Expected {"mcpServers": {"<name>": {"command": "...", "args": [...]}}}.'
        ) from None
    if not isinstance(data, dict):
        raise UsageError(f'{path}: expected a JSON object with an "mcpServers" object, found {_kind(data)}.')
    if "mcpServers" not in data:
        hint = difflib.get_close_matches("mcpServers", [str(k) for k in data], n=1, cutoff=0.7)
        also = f" (found {hint[0]!r}: a typo?)" if hint else ""
        raise UsageError(
            f'{path}: no "mcpServers" key{also}. Expected {{"mcpServers": {{"<name>": {{"command": "..."}}}}}}.'
        )
    servers = data["mcpServers"]
    if not isinstance(servers, dict):
        raise UsageError(f'{path}: "mcpServers" must be an object of named servers, found {_kind(servers)}.')
    return [_parse_entry(str(name), raw, path, base_dir) for name, raw in servers.items()]


def _parse_entry(name: str, raw: Any, path: Path, base_dir: Path) -> _Entry:
    def fail(what: str) -> UsageError:
        return UsageError(f"{path}: server {name!r}: {what}")

    if not SERVER_NAME.fullmatch(name):
        raise UsageError(
            f"{path}: server name {name!r} is not allowed: use letters, digits, '-' and '_' only "
            "(names form tool ids `server/tool`)."
        )
    if not isinstance(raw, dict):
        raise fail(f"expected an object with `command` or `url`, found {_kind(raw)}.")
    for key in raw:
        if key in _KNOWN_KEYS or key in _FOREIGN_KEYS:
            continue
        close = difflib.get_close_matches(str(key), _KNOWN_KEYS, n=1, cutoff=0.75)
        if close:
            raise fail(f"unknown key {key!r} (did you mean {close[0]!r}?).")

    declared = raw.get("type")
    if declared is not None:
        if declared == "sse":
            raise fail('`type` "sse" (the legacy HTTP+SSE transport) is not supported; use a Streamable HTTP '
                       'endpoint ("type": "http").')
        if declared not in _TYPES:
            raise fail(f'`type` must be "stdio", "http" or "streamable-http", not {declared!r}.')
    command, url = raw.get("command"), raw.get("url")
    if command is not None and url is not None:
        raise fail("has both `command` and `url`; a server is either a command to run (stdio) or a URL (http).")
    if command is None and url is None:
        raise fail("has neither `command` (a program to run over stdio) nor `url` (a Streamable HTTP endpoint).")
    transport: Transport = "stdio" if command is not None else "http"
    if declared is not None and _TYPES[declared] != transport:
        needed = "`command`" if _TYPES[declared] == "stdio" else "`url`"
        raise fail(f"`type` is {declared!r}, which needs {needed}.")
    if transport == "stdio":
        if not isinstance(command, str) or not command.strip():
            raise fail(f"`command` must be a non-empty string, found {_kind(command)}.")
        for key in ("url", "headers"):
            if key in raw:
                raise fail(f"`{key}` applies to http servers only; this one runs `command`.")
    else:
        if not isinstance(url, str) or not url.strip():
            raise fail(f"`url` must be a non-empty string, found {_kind(url)}.")
        if "${" not in url:
            problem = _url_problem(url, show_scheme=True)
            if problem:
                raise fail(f"`url` {problem}")
        for key in ("args", "env", "cwd"):
            if key in raw:
                raise fail(f"`{key}` applies to stdio servers only; this one is reached at a `url`.")

    args = raw.get("args", [])
    if not isinstance(args, list):
        raise fail(f"`args` must be a list of strings, found {_kind(args)}.")
    for i, arg in enumerate(args):
        if not isinstance(arg, str):
            raise fail(f"`args[{i}]` must be a string, found {_kind(arg)} (quote numbers: \"8080\").")
    env = _string_map(raw.get("env", {}), "env", fail)
    headers = _string_map(raw.get("headers", {}), "headers", fail)
    cwd = raw.get("cwd")
    if cwd is not None and (not isinstance(cwd, str) or not cwd.strip()):
        raise fail(f"`cwd` must be a non-empty string, found {_kind(cwd)}.")
    disabled = raw.get("disabled", False)
    if not isinstance(disabled, bool):
        raise fail(f"`disabled` must be true or false, found {_kind(disabled)}.")
    return _Entry(
        name=name, path=path, base_dir=base_dir, transport=transport, command=command if transport == "stdio" else None,
        args=tuple(args), env=env, cwd=cwd, url=url if transport == "http" else None, headers=headers,
        timeout_s=_seconds(raw, "timeout_s", DEFAULT_TIMEOUT_S, fail),
        startup_timeout_s=_seconds(raw, "startup_timeout_s", DEFAULT_STARTUP_TIMEOUT_S, fail), disabled=disabled,
    )


def _string_map(value: Any, key: str, fail: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise fail(f"`{key}` must be an object of string values, found {_kind(value)}.")
    for name, item in value.items():
        if not isinstance(item, str):
            raise fail(f"`{key}.{name}` must be a string, found {_kind(item)} (quote numbers and booleans).")
    return dict(value)


def _seconds(raw: dict[str, Any], key: str, default: float, fail: Any) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise fail(f"`{key}` must be a positive number of seconds, found {value!r}.")
    return float(value)


def _expand(value: str, where: str, environ: Mapping[str, str], fail: Any) -> str:
    """``${VAR}`` and ``${VAR:-default}`` (the default also when VAR is empty, as in a shell)."""

    def replace(match: re.Match[str]) -> str:
        name, sep, default = match.group(1).partition(":-")
        if not _VARIABLE_NAME.fullmatch(name):
            raise fail(f"`{where}` has a malformed ${{...}} reference; write ${{NAME}} or ${{NAME:-default}} "
                       "(NAME: letters, digits and '_').")
        found = environ.get(name)
        if found is None or (sep and found == ""):
            if sep:
                return default
            raise fail(f"`{where}` uses ${{{name}}}, but {name} is not set in the environment. Set it, or "
                       f"give a default: ${{{name}:-default}}.")
        return found

    return _REFERENCE.sub(replace, value)


def _url_problem(url: str, *, show_scheme: bool) -> str | None:
    """Why ``url`` cannot be an MCP endpoint, or None. Shows the scheme only when asked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a valid URL."
    if parts.scheme not in ("http", "https"):
        got = f" (found {parts.scheme + '://' if parts.scheme else 'no scheme'})" if show_scheme else ""
        return f"must start with http:// or https://{got}."
    if not parts.hostname:
        return "has no host name."
    return None


def _public_url(url: str) -> str:
    """The URL for people: no user:password, and its query string (often a key) shown as ``?...``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "...", "")) if parts.query else \
        urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
