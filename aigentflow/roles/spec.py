"""What a role is, as data: ``AgentSpec``.

A role (the Analyst, the Backend Developer, ...) is one or more versions of an ``AgentSpec``: its name,
version, the state-machine steps it leads or helps with, the class that implements it, its prompt layers,
model, skills, tool allowlist and budget. Built-in versions are registered by ``actors/`` (through the
``aigentflow.roles`` entry point); a project adds versions as files under
``.aigentflow/agents/<role>/<version>.toml|json``; the run's settings (``agents.<role>.version``) pick
which one is active. The engine reads only the registry (``aigentflow.roles.registry``).
"""

from __future__ import annotations

import re

from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, field_validator

ROLE_NAME = re.compile(r"[a-z][a-z0-9_]*")
IMPLEMENTATION = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
TOOL_PATTERN = re.compile(r"\*|[A-Za-z0-9_-]+/(\*|[A-Za-z0-9_.:-]+)")


def check_version(value: str) -> str:
    """A PEP 440 version (``1.0.0``, ``1.1.0a1``, ``2.0.0.dev3``); the text as given."""
    try:
        Version(value)
    except InvalidVersion:
        raise ValueError(f"{value!r} is not a version (PEP 440, e.g. 1.0.0 or 1.1.0a1)") from None
    return value


class AgentSpec(BaseModel):
    """One version of a role. Everything the engine and the Orchestrator need to know about it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="The role, snake_case (analyst, backend_developer, ...).")
    version: str = Field(description="This version of the role (PEP 440).")
    description: str = Field("", description="What the role does, in a line.")
    implementation: str = Field(description='The class that implements it, as "module:Class".')
    steps: tuple[str, ...] = Field((), description="State-machine steps this role leads (analyze, plan, build, ...).")
    helps: tuple[str, ...] = Field((), description="Steps whose workflow calls this role (it is started with them).")
    flag: str | None = Field(None, description="The feature flag that turns the role on (agents.analyst).")
    workflow: str | None = Field(
        None, description='"module:Class" the Orchestrator runs for the steps it leads or helps, instead of one call.')
    deterministic: bool = Field(False, description="It calls no model: its work is plain code (no prompt layers).")
    prompt_layers: tuple[str, ...] = Field(
        (), description="Its prompt's role layers, by name (roles/analyst.md; agents/<role>/<file>.md for a "
                        "project's own); empty means roles/<name>.md.")
    model: str | None = Field(None, description="The model it calls (provider/name); none: the run's model.")
    skills: tuple[str, ...] | None = Field(None, description="Skills it may be given, by name; none: any picked.")
    tools: tuple[str, ...] | None = Field(
        None, description="MCP tools it may call (server/tool, server/*, *); none: the run's tools.<role> setting.")
    budget: int | None = Field(None, ge=1, description="Most model calls one of its steps may make; none: no limit "
                                                        "besides the run's model.max_calls_per_run.")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not ROLE_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a role name (lowercase letters, digits and _)")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        return check_version(value)

    @field_validator("implementation", "workflow")
    @classmethod
    def _class_path(cls, value: str | None) -> str | None:
        if value is not None and not IMPLEMENTATION.fullmatch(value):
            raise ValueError(f'{value!r} is not a class path: write "module:Class"')
        return value

    @field_validator("tools")
    @classmethod
    def _tools(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for pattern in value or ():
            if not TOOL_PATTERN.fullmatch(pattern):
                raise ValueError(f"{pattern!r} is not a tool pattern: use server/tool, server/* or *")
        return value

    @property
    def key(self) -> str:
        """``analyst@1.0.0``: how traces, actors and listings name this version."""
        return f"{self.name}@{self.version}"

    @property
    def role_layers(self) -> tuple[str, ...]:
        """The prompt layers that say who the agent is (after the constitution, before the output format)."""
        return self.prompt_layers or (f"roles/{self.name}.md",)
