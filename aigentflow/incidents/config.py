"""``[incidents]`` in the configuration files (the user's ``config.toml``, then the project's): alert routes
and when detection runs. Validated here, not by ``aigentflow.config`` (which leaves the table to us).

Secrets never sit in the file: a route names the environment variables holding its URL (``url_env``), its
headers (``headers_env``) or its SMTP credentials (``username_env``, ``password_env``)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aigentflow.exceptions import ConfigError
from aigentflow.incidents.records import rank

Severity = Literal["SEV1", "SEV2", "SEV3", "SEV4"]


class RouteError(ConfigError):
    """An alert route that cannot be used."""


class Route(BaseModel):
    """Where alerts go: a webhook (JSON POST), a Slack-compatible webhook, or email through SMTP."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="The route's name, on the timeline.")
    type: Literal["webhook", "slack", "email"] = Field(description="webhook, slack or email.")
    url: str | None = Field(None, description="webhook/slack: the URL (prefer url_env when it holds a token).")
    url_env: str | None = Field(None, description="webhook/slack: the environment variable holding the URL.")
    headers_env: dict[str, str] = Field(default_factory=dict,
                                        description="Header name -> environment variable holding its value.")
    host: str | None = Field(None, description="email: the SMTP server.")
    port: int = Field(25, ge=1, le=65535, description="email: its port.")
    starttls: bool = Field(False, description="email: upgrade the connection with STARTTLS.")
    from_addr: str | None = Field(None, alias="from", description="email: the sender.")
    to: list[str] = Field(default_factory=list, description="email: the recipients.")
    username_env: str | None = Field(None, description="email: the environment variable holding the login.")
    password_env: str | None = Field(None, description="email: the environment variable holding the password.")
    min_severity: Severity = Field("SEV4", description="Alert for incidents at least this severe.")
    severities: list[Severity] | None = Field(None, description="Or exactly these severities.")
    rules: list[str] = Field(default_factory=lambda: ["*"], description="Rule ids this route alerts for.")
    retries: int = Field(3, ge=0, le=10, description="Attempts after the first, with exponential backoff.")
    backoff_s: float = Field(0.5, ge=0, le=60, description="The first wait between attempts.")
    timeout_s: float = Field(5.0, gt=0, le=60, description="Seconds one attempt may take.")

    @model_validator(mode="after")
    def _complete(self) -> Route:
        if self.type in ("webhook", "slack"):
            if (self.url is None) == (self.url_env is None):
                raise ValueError(f"a {self.type} route needs exactly one of `url` or `url_env`")
            if self.url is not None and not self.url.startswith(("http://", "https://")):
                raise ValueError("`url` must start with http:// or https://")
        else:
            if not self.host or not self.from_addr or not self.to:
                raise ValueError("an email route needs `host`, `from` and `to`")
            if (self.username_env is None) != (self.password_env is None):
                raise ValueError("give both `username_env` and `password_env`, or neither")
        return self

    def wants(self, severity: str, rule: str) -> bool:
        if self.severities is not None:
            wanted = severity in self.severities
        else:
            wanted = rank(severity) <= rank(self.min_severity)
        return wanted and ("*" in self.rules or rule in self.rules)

    def target(self) -> str:
        """The URL to post to (read from the environment when ``url_env``); raises RouteError when unset."""
        if self.url is not None:
            return self.url
        value = os.environ.get(self.url_env or "", "")
        if not value:
            raise RouteError(f"route {self.name}: environment variable {self.url_env} is not set")
        return value

    def secrets(self) -> list[str]:
        """The values this route reads from the environment: redacted from everything it records."""
        names = [self.url_env, self.username_env, self.password_env, *self.headers_env.values()]
        return [os.environ[n] for n in names if n and os.environ.get(n)]


class IncidentSettings(BaseModel):
    """The ``[incidents]`` table."""

    model_config = ConfigDict(extra="forbid")

    routes: list[Route] = Field(default_factory=list, description="Alert routes ([[incidents.routes]]).")
    detect_on_run_end: bool = Field(True, description="Run detection (in the background) when a run ends.")
    give_up_after: int = Field(3, ge=1, description="Failed deliveries of one incident to a route before it stops.")


def _table(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}; fix or remove the file") from None
    table = data.get("incidents", {})
    if not isinstance(table, dict):
        raise RouteError(f"{path}: `incidents` must be a table ([incidents])")
    return table


def load_settings(project_root: Path | None) -> IncidentSettings:
    """The user's ``[incidents]``, then the project's: a project route replaces a user route of its name."""
    from aigentflow.config.loader import user_config_file
    from aigentflow.project.paths import ProjectPaths

    files = [user_config_file()] + ([ProjectPaths(project_root).config_file] if project_root else [])
    merged: dict[str, Any] = {}
    routes: dict[str, Route] = {}
    for path in files:
        table = dict(_table(path))
        raw_routes = table.pop("routes", [])
        if not isinstance(raw_routes, list):
            raise RouteError(f"{path}: write alert routes as [[incidents.routes]] tables")
        for number, raw in enumerate(raw_routes, start=1):
            try:
                route = Route.model_validate(raw)
            except ValidationError as exc:
                reasons = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'route'}: {e['msg']}" for e in exc.errors())
                name = raw.get("name") if isinstance(raw, dict) else None
                raise RouteError(f"{path}: alert route #{number}{f' ({name})' if name else ''} is invalid: "
                                 f"{reasons}") from None
            routes[route.name] = route
        merged.update(table)
    try:
        return IncidentSettings.model_validate({**merged, "routes": list(routes.values())})
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise RouteError(f"[incidents] is invalid: {reasons}") from None

